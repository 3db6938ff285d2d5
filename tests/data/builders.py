"""Plain helpers for the dataset tests (importable, unlike conftest)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any


def coco_dict(
    images: list[tuple[int, str, int, int]],
    boxes: list[tuple[int, int, list[float]]],
    categories: tuple[int, ...] = (1,),
) -> dict[str, Any]:
    """COCO dict from ``(id, file_name, w, h)`` images and ``(ann id, image id, bbox)`` boxes."""
    return {
        "categories": [{"id": c, "name": "scratch"} for c in categories],
        "images": [{"id": i, "file_name": n, "width": w, "height": h} for i, n, w, h in images],
        "annotations": [
            {"id": a, "image_id": i, "category_id": 1, "iscrowd": 0, "bbox": b} for a, i, b in boxes
        ],
    }


def png_claiming(path: Path, side: int) -> Path:
    """A tiny grey PNG whose header claims ``side`` x ``side`` pixels: a decompression bomb
    for PIL from side 13,380 up (twice ``Image.MAX_IMAGE_PIXELS``), a few hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (side + 1)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b""))
    return path
