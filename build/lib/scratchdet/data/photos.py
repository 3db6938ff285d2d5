"""Finding photos: files, folders, globs or list files -> an ordered list of photo paths (the
one collector)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
#: A source file with this suffix lists photo paths, one a line.
LIST_SUFFIX = ".txt"


def collect_photos(sources: str | Path | Sequence[str | Path]) -> list[Path]:
    """Photos named by files, folders (their .jpg/.jpeg/.png files, sorted), globs or ``.txt``
    list files (:func:`read_photo_list`), in order, each once.

    Raises:
        FileNotFoundError: a source names nothing (the message names it).
    """
    if isinstance(sources, str | Path):
        sources = [sources]
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_file() and path.suffix.lower() == LIST_SUFFIX:
            hits = read_photo_list(path)
        elif path.is_file():
            hits = [path]
        elif path.is_dir():
            hits = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        else:
            hits = sorted(Path(p) for p in glob.glob(str(source)) if Path(p).is_file())
        if not hits:
            raise FileNotFoundError(
                f"{source}: no photos found (expected a photo file, a folder of "
                f"{'/'.join(PHOTO_SUFFIXES)} files, a glob or a {LIST_SUFFIX} list of photos)"
            )
        found.extend(hits)
    return list(dict.fromkeys(found))


def read_photo_list(path: str | Path) -> list[Path]:
    """The photo paths a text file lists, one a line, in its order (blank lines and lines
    starting with ``#`` skipped; a relative path is relative to the list's folder).

    The listed files are not looked at here (a list may name millions): a missing or
    unreadable one is reported when it is predicted, like any unreadable photo.
    """
    path = Path(path)
    base = path.parent
    photos = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            name = line.strip()
            if name and not name.startswith("#"):
                photos.append(base / name)  # an absolute name stays as it is
    return photos
