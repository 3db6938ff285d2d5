"""Boxes per scratch and false boxes per clean photo, against an exact hand-counted table."""

from __future__ import annotations

import pytest

from scratchdet.evaluation.box_stats import box_stats

from .coco_helpers import CATS, ann, det, img

# photo 1: two scratches; the first found by one box and a nested fragment (IoU 0.5 with it),
#          the second missed; one look-alike box far away
# photo 2: one scratch found once; a low-scoring duplicate below the threshold
# photo 3, 4: clean; photo 3 with two false boxes, photo 4 with none
# photo 5: one scratch, missed; the photo fails only for a look-alike elsewhere
# photo 6: a short scratch inside a large box (IoU 0.0044: no match, but the box lies on it)
GT = {
    "images": [img(1, "white_a.jpg"), img(2, "white_b.jpg"), img(3, "red_c.jpg"),
               img(4, "red_d.jpg"), img(5, "white_e.jpg"), img(6, "white_f.jpg")],
    "annotations": [ann(1, 1, [100, 100, 200, 20]), ann(2, 1, [1000, 1000, 50, 50]),
                    ann(3, 2, [10, 10, 40, 40]), ann(4, 5, [400, 400, 100, 10]),
                    ann(5, 6, [600, 600, 20, 20])],
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
    det(5, [2000, 2000, 50, 50], 0.7),  # look-alike on a scratched photo
    det(6, [500, 500, 300, 300], 0.8),  # around the short scratch
    det(9, [0, 0, 10, 10], 0.99),       # a photo the ground truth does not list
]


def test_table_at_half() -> None:
    s = box_stats(GT, DETS, threshold=0.5)
    assert s.matched_per_gt == (2, 0, 1, 0, 0)
    assert (s.median_matched, s.max_matched, s.missed) == (0.0, 2, 3)
    assert s.unmatched_on_scratched == 3
    assert s.false_per_clean == (2, 0) and s.mean_false_per_clean == 1.0
    assert (s.scratched_photos, s.scratched_caught, s.caught_on_scratch) == (4, 4, 3)
    assert s.caught_elsewhere == 1  # photo 5
    assert s.text() == ("at 0.5 (IoU 0.5): boxes per scratch median 0 (max 2), 3/5 missed; "
                        "3 unmatched boxes on scratched photos; false boxes per clean photo "
                        "1.00 (2 on 2); scratched photos with a box 4/4, 1 of them with none "
                        "on a labelled scratch")
    d = s.to_dict()
    assert d["false_per_clean_photo"] == 1.0
    assert (d["scratched_photos"], d["scratched_caught"], d["caught_on_scratch"]) == (4, 4, 3)


def test_threshold_and_iou_move_the_counts() -> None:
    low = box_stats(GT, DETS, threshold=0.2)
    assert low.matched_per_gt == (2, 0, 2, 0, 0)  # the 0.3 duplicate now counts
    strict = box_stats(GT, DETS, threshold=0.5, iou=0.6)
    assert strict.matched_per_gt == (1, 0, 1, 0, 0) and strict.unmatched_on_scratched == 4
    assert strict.caught_on_scratch == 3  # lying on a scratch does not depend on the IoU
    above = box_stats(GT, DETS, threshold=0.75)  # photo 5's look-alike (0.7) is gone
    assert (above.scratched_caught, above.caught_on_scratch, above.caught_elsewhere) == (3, 3, 0)
    high = box_stats(GT, DETS, threshold=0.99)
    assert high.matched_per_gt == (0, 0, 0, 0, 0) and high.false_per_clean == (0, 0)
    assert (high.scratched_photos, high.scratched_caught) == (4, 0)
    empty = box_stats({"images": [], "annotations": [], "categories": CATS}, [], 0.5)
    assert empty.median_matched == 0.0 and empty.mean_false_per_clean == 0.0


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
def test_counts_are_consistent(threshold: float) -> None:
    s = box_stats(GT, DETS, threshold)
    kept = [d for d in DETS if d["score"] >= threshold and d["image_id"] != 9]
    on_clean = sum(s.false_per_clean)
    assert on_clean == sum(d["image_id"] in (3, 4) for d in kept)
