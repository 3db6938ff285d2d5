"""Atomic file writes: write to a temporary file in the same folder, then rename.

A crash or an error half-way leaves the destination untouched (or absent), never a
half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class OutputExistsError(FileExistsError):
    """The output file exists and overwriting was not asked for."""


def check_writable(path: str | Path, force: bool) -> Path:
    """Return ``path``; raise :class:`OutputExistsError` if it exists and ``force`` is False."""
    out = Path(path)
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: already exists; pass --force to overwrite it")
    return out


def write_bytes_atomic(path: str | Path, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    out = check_writable(path, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def write_text_atomic(path: str | Path, text: str, force: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"), force)


def write_json_atomic(
    path: str | Path, obj: Any, force: bool = False, indent: int | None = None
) -> Path:
    """Serialise ``obj`` as JSON and write it atomically (refuses to overwrite unless ``force``)."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n", force)
