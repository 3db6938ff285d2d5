"""Atomic file writes: write to a temporary file in the same folder, then rename.

A crash or an error half-way leaves the destination untouched (or absent), never a
half-written file. The temporary file, ``.<name>.<8 random chars>.part``, has a name of its
own for every write (two writers of one target never share it) and is removed on any
exception. A process killed mid-write (SIGKILL, power loss) cannot remove it: the first
write of a later process into that folder removes such leftovers older than
:data:`STALE_PART_S` (a live write touches its file far more often than that).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Seconds after its last change a temporary file counts as the leftover of a killed write.
STALE_PART_S = 3600.0
#: The temporary files of this module (``tempfile.mkstemp``'s 8 random characters).
_PART_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")
_swept: set[str] = set()  # folders already cleared of leftovers by this process


class OutputExistsError(FileExistsError):
    """The output file exists and overwriting was not asked for."""


def check_writable(path: str | Path, force: bool) -> Path:
    """Return ``path``; raise :class:`OutputExistsError` if it exists and ``force`` is False."""
    out = Path(path)
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: already exists; pass --force to overwrite it")
    return out


def remove_stale_parts(folder: str | Path, older_than_s: float = STALE_PART_S) -> list[Path]:
    """Remove the temporary files of killed writes (``.<name>.<8 chars>.part``) in ``folder``
    unchanged for more than ``older_than_s`` seconds; return those removed."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _PART_NAME.match(entry.name):
            continue
        try:
            if (entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # removed meanwhile, or not ours to remove: leave it
            continue
    return removed


def _sweep_once(folder: Path) -> None:
    """:func:`remove_stale_parts` on the first write of this process into ``folder``."""
    key = os.path.realpath(folder)
    if key not in _swept:
        _swept.add(key)
        remove_stale_parts(folder)


@contextmanager
def atomic_output(path: str | Path, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    For writers that need a file name (``torch.save``, ``onnx.save``). On any error the
    temporary file is removed and ``path`` is left as it was. The result gets the usual
    file mode (0666 less the umask), not ``mkstemp``'s 0600.
    """
    out = check_writable(path, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(out.parent)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and a rename."""
    with atomic_output(path, force) as tmp, tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def write_text_atomic(path: str | Path, text: str, force: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"), force)


def write_json_atomic(
    path: str | Path, obj: Any, force: bool = False, indent: int | None = None
) -> Path:
    """Serialise ``obj`` as JSON and write it atomically (refuses to overwrite unless ``force``)."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n", force)
