"""Tiny inline COCO records for evaluator tests."""

from __future__ import annotations

CATS = [{"id": 1, "name": "scratch"}]


def img(i: int, name: str) -> dict:
    return {"id": i, "file_name": name, "width": 4608, "height": 3072}


def ann(i: int, image_id: int, bbox: list[float]) -> dict:
    return {"id": i, "image_id": image_id, "category_id": 1, "bbox": bbox,
            "area": bbox[2] * bbox[3], "iscrowd": 0}


def det(image_id: int, bbox: list[float], score: float) -> dict:
    return {"image_id": image_id, "bbox": bbox, "score": score, "category_id": 1}
