"""Bootstrap intervals of AP over photos: resampling table, point values, edge cases."""

from __future__ import annotations

import pytest

from scratchdet.evaluation import evaluate
from scratchdet.evaluation.bootstrap import bootstrap_ap, bootstrap_text, resample

from .coco_helpers import CATS
from .coco_helpers import ann as _ann
from .coco_helpers import det as _det
from .coco_helpers import img as _img

# white: photo 1 hit, photo 2 missed (a false box elsewhere), photo 3 clean with a false box;
# red: photo 4 hit, photo 5 clean without detections
GT = {"images": [_img(1, "white_a.jpg"), _img(2, "white_b.jpg"), _img(3, "white_c.jpg"),
                 _img(4, "red_d.jpg"), _img(5, "red_e.jpg")],
      "annotations": [_ann(1, 1, [100, 100, 50, 50]), _ann(2, 2, [300, 300, 60, 40]),
                      _ann(3, 4, [500, 500, 80, 30])],
      "categories": CATS}
DETS = [_det(1, [102, 101, 50, 50], 0.9), _det(2, [900, 900, 40, 40], 0.8),
        _det(3, [50, 50, 30, 30], 0.7), _det(4, [500, 500, 80, 30], 0.6)]


def test_resample_renumbers_each_copy_with_its_boxes_and_detections() -> None:
    by_image = {d["image_id"]: [d] for d in DETS}
    coco, dets = resample(GT, by_image, [2, 2, 5])
    assert [(im["id"], im["file_name"]) for im in coco["images"]] == [
        (1, "white_b.jpg"), (2, "white_b.jpg"), (3, "red_e.jpg")]
    assert [(a["id"], a["image_id"], a["bbox"]) for a in coco["annotations"]] == [
        (1, 1, [300, 300, 60, 40]), (2, 2, [300, 300, 60, 40])]
    assert [(d["image_id"], d["score"]) for d in dets] == [(1, 0.8), (2, 0.8)]
    assert GT["images"][1]["id"] == 2 and DETS[1]["image_id"] == 2  # inputs untouched


def test_point_values_are_the_evaluators_and_intervals_bracket_them() -> None:
    cis = bootstrap_ap(GT, DETS, samples=300, seed=1)
    table = evaluate(GT, DETS)
    for group in ("all", "white", "red"):
        assert cis[group].value == pytest.approx(table.value("AP", "0.50", group=group))
        assert cis[group].low <= cis[group].value <= cis[group].high
    assert cis["red"].value == pytest.approx(1.0)
    assert (cis["red"].low, cis["red"].high) == pytest.approx((1.0, 1.0))
    # red resamples of only the clean photo hold no box: left out (1/4 of resamples)
    assert 200 <= cis["red"].valid < 300 and cis["white"].valid < 300
    assert cis["white"].low < cis["white"].high  # one hit of two boxes moves with the photos
    again = bootstrap_ap(GT, DETS, samples=300, seed=1)
    assert again == cis
    ap_all = bootstrap_ap(GT, DETS, group_by=None, iou="0.50:0.95", samples=20)
    assert list(ap_all) == ["all"]
    assert ap_all["all"].value == pytest.approx(evaluate(GT, DETS).value("AP", "0.50:0.95"))


def test_no_box_and_bad_arguments() -> None:
    clean = {**GT, "annotations": []}
    cis = bootstrap_ap(clean, DETS, samples=5)
    assert cis["all"].valid == 0 and cis["all"].value == -1.0
    assert "all n/a (no box)" in bootstrap_text(cis)
    text = bootstrap_text(bootstrap_ap(GT, DETS, samples=10))
    assert text.startswith("AP50 95% bootstrap interval (10 photo resamples): all ")
    with pytest.raises(ValueError, match="samples"):
        bootstrap_ap(GT, DETS, samples=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ap(GT, DETS, level=1.0)
