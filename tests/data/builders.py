"""Plain helpers for the dataset tests (importable, unlike conftest)."""

from __future__ import annotations

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
