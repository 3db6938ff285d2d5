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


#: One white photo with one box found exactly (0.9), one clean red photo with a false box (0.4).
TWO_PHOTOS_GT = {
    "images": [{"id": 1, "file_name": "white_a.jpg", "width": 640, "height": 480},
               {"id": 2, "file_name": "red_b.jpg", "width": 640, "height": 480}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50],
                     "area": 2500, "iscrowd": 0}],
    "categories": CATS,
}
TWO_PHOTOS_DETS = [det(1, [10, 10, 50, 50], 0.9), det(2, [100, 100, 20, 20], 0.4)]
