"""Finding photos: files, folders or globs -> an ordered list of photo paths (the one collector)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def collect_photos(sources: str | Path | Sequence[str | Path]) -> list[Path]:
    """Photos named by files, folders (their .jpg/.jpeg/.png files, sorted) or globs, in
    order, each once.

    Raises:
        FileNotFoundError: a source names nothing (the message names it).
    """
    if isinstance(sources, str | Path):
        sources = [sources]
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            hits = [path]
        elif path.is_dir():
            hits = sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        else:
            hits = sorted(Path(p) for p in glob.glob(str(source)) if Path(p).is_file())
        if not hits:
            raise FileNotFoundError(
                f"{source}: no photos found (expected a photo file, a folder of "
                f"{'/'.join(PHOTO_SUFFIXES)} files, or a glob)"
            )
        found.extend(hits)
    return list(dict.fromkeys(found))
