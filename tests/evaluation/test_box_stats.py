"""Boxes per scratch and false boxes per clean photo, against an exact hand-counted table."""

from __future__ import annotations

import pytest

from scratchdet.evaluation.box_stats import box_stats

from .coco_helpers import CATS, ann, det, img

# photo 1: two scratches; the first found by one box and a nested fragment (IoU 0.5 with it),
#          the second missed; one look-alike box far away
# photo 2: one scratch found once; a low-scoring duplicate below the threshold
# photo 3, 4: clean; photo 3 with two false boxes, photo 4 with none
GT = {
    "images": [img(1, "white_a.jpg"), img(2, "white_b.jpg"), img(3, "red_c.jpg"),
               img(4, "red_d.jpg")],
    "annotations": [ann(1, 1, [100, 100, 200, 20]), ann(2, 1, [1000, 1000, 50, 50]),
                    ann(3, 2, [10, 10, 40, 40])],
    "categories": CATS,
}
DETS = [
    det(1, [100, 100, 200, 20], 0.9),
    det(1, [100, 100, 100, 20], 0.7),   # half of GT 1: IoU 0.5
    det(1, [3000, 2000, 30, 30], 0.6),  # look-alike
    det(2, [10, 10, 40, 40], 0.8),
    det(2, [12, 12, 40, 40], 0.3),      # below 0.5
    det(3, [5, 5, 10, 10], 0.55),
    det(3, [500, 5, 10, 10], 0.95),
    det(9, [0, 0, 10, 10], 0.99),       # a photo the ground truth does not list
]


def test_table_at_half() -> None:
    s = box_stats(GT, DETS, threshold=0.5)
    assert s.matched_per_gt == (2, 0, 1)
    assert (s.median_matched, s.max_matched, s.missed) == (1.0, 2, 1)
    assert s.unmatched_on_scratched == 1
    assert s.false_per_clean == (2, 0) and s.mean_false_per_clean == 1.0
    assert s.text() == ("at 0.5 (IoU 0.5): boxes per scratch median 1 (max 2), 1/3 missed; "
                        "1 unmatched boxes on scratched photos; false boxes per clean photo "
                        "1.00 (2 on 2)")
    assert s.to_dict()["false_per_clean_photo"] == 1.0


def test_threshold_and_iou_move_the_counts() -> None:
    low = box_stats(GT, DETS, threshold=0.2)
    assert low.matched_per_gt == (2, 0, 2)  # the 0.3 duplicate now counts
    strict = box_stats(GT, DETS, threshold=0.5, iou=0.6)
    assert strict.matched_per_gt == (1, 0, 1) and strict.unmatched_on_scratched == 2
    high = box_stats(GT, DETS, threshold=0.99)
    assert high.matched_per_gt == (0, 0, 0) and high.false_per_clean == (0, 0)
    empty = box_stats({"images": [], "annotations": [], "categories": CATS}, [], 0.5)
    assert empty.median_matched == 0.0 and empty.mean_false_per_clean == 0.0


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
def test_counts_are_consistent(threshold: float) -> None:
    s = box_stats(GT, DETS, threshold)
    kept = [d for d in DETS if d["score"] >= threshold and d["image_id"] != 9]
    on_clean = sum(s.false_per_clean)
    assert on_clean == sum(d["image_id"] in (3, 4) for d in kept)
