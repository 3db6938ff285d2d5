"""Per-photo analysis: AP50, misses, false boxes, ranking, overlays and crops."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from scratchdet.evaluation.analysis import analyze_photos, rank_best, rank_worst
from scratchdet.evaluation.analyze import write_analysis
from scratchdet.evaluation.overlays import CropSpec, crop_windows, photo_marks
from scratchdet.geometry.localize import locate_part_in_file
from scratchdet.overlay import view_window

CATS = [{"id": 1, "name": "scratch"}]


def _gt() -> dict:
    images = [{"id": i, "file_name": f"{c}_{i}.jpg", "width": 640, "height": 480}
              for i, c in ((1, "white"), (2, "white"), (3, "red"), (4, "red"))]
    boxes = [(1, 1, [100, 100, 40, 30]), (2, 1, [300, 200, 50, 50]), (3, 2, [200, 200, 60, 20])]
    anns = [{"id": i, "image_id": img, "category_id": 1, "bbox": b, "area": b[2] * b[3],
             "iscrowd": 0} for i, img, b in boxes]
    return {"images": images, "annotations": anns, "categories": CATS}


def _det(image_id: int, bbox: list[float], score: float) -> dict:
    return {"image_id": image_id, "bbox": bbox, "score": score, "category_id": 1}


DETS = [
    _det(1, [101, 100, 40, 30], 0.9),  # photo 1: both boxes found
    _det(1, [300, 201, 50, 50], 0.8),
    _det(2, [500, 50, 30, 30], 0.7),  # photo 2: its box missed, one false box
    _det(3, [10, 10, 30, 30], 0.6),  # photo 3: clean, one false box
    _det(3, [50, 50, 30, 30], 0.1),  # ... and one below score_thr
]


def test_per_photo_numbers() -> None:
    photos = {p.image_id: p for p in analyze_photos(_gt(), DETS, score_thr=0.3)}
    assert (photos[1].ap50, photos[1].misses, photos[1].false_boxes) == (1.0, 0, 0)
    assert (photos[2].ap50, photos[2].misses, photos[2].false_boxes) == (0.0, 1, 1)
    assert (photos[3].ap50, photos[3].rank_score, photos[3].false_boxes) == (None, 0.0, 1)
    assert len(photos[3].detections) == 1  # the 0.1 box is not drawn
    assert (photos[4].ap50, photos[4].rank_score) == (None, 1.0)  # clean, nothing detected
    assert photos[1].group == "white" and all(g.matched for g in photos[1].gt)


def test_ranking_orders_by_ap_then_misses_then_false_boxes() -> None:
    photos = analyze_photos(_gt(), DETS, score_thr=0.3)
    assert [p.image_id for p in rank_worst(photos)] == [2, 3, 4, 1]  # 4/1 tie: by name
    assert [p.image_id for p in rank_best(photos)] == [1, 4, 3, 2]


def test_crop_windows_keep_context_and_stay_inside() -> None:
    from scratchdet.evaluation.analysis import BoxView

    boxes = [BoxView((100, 100, 40, 30), None, True), BoxView((0, 0, 10, 10), 0.5, False)]
    w1, w2 = crop_windows(boxes, (640, 480), CropSpec(margin=64, min_side=192))
    assert w1 == (24, 19, 217, 212)  # centre 120,115; half 96 each way (min_side wins)
    assert w2[:2] == (0, 0) and w2[2] <= 640


def test_crop_windows_skip_boxes_already_inside_a_crop() -> None:
    from scratchdet.evaluation.analysis import BoxView

    spec = CropSpec(margin=64, min_side=192, max_crops=2)
    boxes = [BoxView((100, 100, 40, 30), None, False),
             BoxView((110, 105, 20, 10), 0.6, False),  # inside the first window: no crop
             BoxView((100, 100, 40, 30), 0.5, False),  # the same box again: no crop
             BoxView((400, 300, 20, 20), 0.4, False),
             BoxView((10, 400, 20, 20), 0.3, False)]  # beyond max_crops windows
    assert crop_windows(boxes, (640, 480), spec) == [(24, 19, 217, 212), (314, 214, 507, 407)]


def test_write_analysis_on_tiny_photos(tmp_path: Path) -> None:
    images = tmp_path / "img"
    images.mkdir()
    for i in (1, 2, 3):  # photo 4 is absent: ranked but never drawn
        name = _gt()["images"][i - 1]["file_name"]
        Image.new("RGB", (640, 480), (128, 128, 128)).save(images / name)
    res = write_analysis(_gt(), DETS, images, tmp_path / "out", top_k=2, score_thr=0.3)
    assert res.present == 3
    data = json.loads((tmp_path / "out/analysis.json").read_text())
    assert [e["file_name"] for e in data["worst"]] == ["white_2.jpg", "red_3.jpg"]
    assert [e["file_name"] for e in data["best"]] == ["white_1.jpg", "red_3.jpg"]
    assert data["worst"][0]["crops"] == ["worst/01_white_2_crop00.jpg",
                                         "worst/01_white_2_crop01.jpg"]  # 1 miss + 1 false
    assert Image.open(tmp_path / "out/worst/01_white_2.jpg").size == (640, 480)
    assert (tmp_path / "out/pr_curves.png").stat().st_size > 1000
    csv_lines = (tmp_path / "out/photos.csv").read_text().splitlines()
    assert csv_lines[1].startswith("2,white_2.jpg,white,0.0,1,1,1,True")
    assert "4,red_4.jpg,red,,0,0,0,False" in csv_lines  # not on disk: ranked, not drawn
    with pytest.raises(FileExistsError, match="already exists"):
        write_analysis(_gt(), DETS, images, tmp_path / "out", top_k=2)


def test_analyze_real_val_photos(sample: Path, tmp_path: Path) -> None:
    """Crafted detections on the sample's val photos: jittered GT boxes + false boxes."""
    gt = json.loads((sample / "annotations/val.json").read_text())
    present = {img["id"] for img in gt["images"] if (sample / "val" / img["file_name"]).is_file()}
    rng = random.Random(0)
    dets = [
        _det(a["image_id"], [a["bbox"][0] + rng.uniform(-4, 4), *a["bbox"][1:]],
             rng.uniform(0.5, 0.99))
        for a in gt["annotations"] if a["image_id"] in present
    ]
    clean = [i for i in sorted(present) if not any(a["image_id"] == i for a in gt["annotations"])]
    dets.append(_det(clean[0], [2000, 1500, 60, 40], 0.95))
    res = write_analysis(gt, dets, sample / "val", tmp_path, top_k=1, score_thr=0.3)
    assert res.present == 16
    data = json.loads((tmp_path / "analysis.json").read_text())
    assert data["worst"][0]["image_id"] == clean[0] and data["worst"][0]["false_boxes"] == 1
    assert data["best"][0]["ap50"] == 1.0 and data["best"][0]["misses"] == 0
    overlay = Image.open(tmp_path / data["worst"][0]["overlay"])
    worst = next(p for p in res.photos if p.image_id == clean[0])
    region = locate_part_in_file(sample / "val" / worst.file_name)
    assert not region.fallback
    x0, y0, x1, y1 = view_window((4608, 3072), region.box, photo_marks(worst))
    shrink = min(1.0, 1600 / max(x1 - x0, y1 - y0))  # the part region + margin, <= 1600 px
    assert overlay.size == (round((x1 - x0) * shrink), round((y1 - y0) * shrink))
    assert overlay.size != (1600, 1067)  # not the whole photo
    crop = Image.open(tmp_path / data["worst"][0]["crops"][0])
    assert crop.size == (193, 193)  # full resolution: 60x40 box, at least 192 px around it
