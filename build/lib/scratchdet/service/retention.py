"""Retention: drop the oldest inspections (their history rows and stored photos together).

Used by ``scratchdet serve --keep-days/--max-photos`` (at start and after each insert) and by
``scratchdet history prune``. Rows go first, in one transaction per batch, then their photos;
only files inside the storage folder are ever removed (a row's photo is looked up there by
name, so a history written from another working directory prunes the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scratchdet.service.db import History


@dataclass(frozen=True)
class Pruned:
    rows: int
    photos: int
    bytes: int


def stored_photo(storage_dir: Path, photo_path: str) -> Path:
    """Where a row's photo lies: its file name inside ``storage_dir``."""
    return storage_dir / Path(photo_path).name


def remove_photos(storage_dir: Path, photo_paths: list[str]) -> tuple[int, int]:
    """Delete these photos from ``storage_dir``; (files removed, bytes freed)."""
    files = freed = 0
    for photo_path in photo_paths:
        path = stored_photo(storage_dir, photo_path)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        files += 1
        freed += size
    return files, freed


def prune(history: History, storage_dir: Path, keep_days: float | None = None,
          max_photos: int | None = None, now: datetime | None = None) -> Pruned:
    """Remove, oldest first, every inspection older than ``keep_days`` or beyond the newest
    ``max_photos``; with neither given nothing is removed."""
    if keep_days is None and max_photos is None:
        return Pruned(0, 0, 0)
    moment = now or datetime.now(UTC)
    rows = files = freed = 0
    while batch := history.oldest(keep_days, max_photos, moment):
        rows += history.remove([inspection_id for inspection_id, _ in batch])
        removed, size = remove_photos(storage_dir, [path for _, path in batch])
        files += removed
        freed += size
    return Pruned(rows, files, freed)
