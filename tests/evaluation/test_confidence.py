"""Precision/recall/F1 by confidence: a pure function against a hand-computed table."""

from __future__ import annotations

import pytest

from evaluation.coco_helpers import CATS, ann, det, img
from scratchdet.evaluation.confidence import (
    PRF1Point,
    best_f1,
    box_prf1,
    confidence_grid,
    part_prf1,
    prf1_curve,
)
from scratchdet.evaluation.image_level import part_level

# 4 items (2 right), 3 positives in all (one never found); kept when score >= t.
SCORES = [0.9, 0.8, 0.6, 0.3]
RIGHT = [True, False, True, False]
#: threshold -> (tp, fp, fn, precision, recall, F1), by hand
TABLE = {
    0.0: (2, 2, 1, 1 / 2, 2 / 3, 4 / 7),
    0.5: (2, 1, 1, 2 / 3, 2 / 3, 2 / 3),
    0.6: (2, 1, 1, 2 / 3, 2 / 3, 2 / 3),  # the 0.6 item sits on the threshold: kept
    0.7: (1, 1, 2, 1 / 2, 1 / 3, 2 / 5),
    0.85: (1, 0, 2, 1.0, 1 / 3, 1 / 2),
    0.95: (0, 0, 3, None, 0.0, 0.0),  # nothing kept: precision undefined
}


def test_prf1_curve_matches_the_hand_table() -> None:
    curve = prf1_curve(SCORES, RIGHT, 3, list(TABLE))
    for point, (t, (tp, fp, fn, p, r, f1)) in zip(curve, TABLE.items(), strict=True):
        assert (point.threshold, point.tp, point.fp, point.fn) == (t, tp, fp, fn)
        assert point.precision == (None if p is None else pytest.approx(p))
        assert (point.recall, point.f1) == (pytest.approx(r), pytest.approx(f1))
        if p is not None and p + r > 0:  # F1 is the harmonic mean of P and R
            assert point.f1 == pytest.approx(2 * p * r / (p + r))
    best = best_f1(curve)
    assert best is not None and best.threshold == 0.6  # ties: the highest threshold


def test_prf1_edge_cases() -> None:
    empty = prf1_curve([], [], 0, [0.0, 0.5])
    assert [(p.tp, p.fp, p.fn, p.precision, p.recall, p.f1) for p in empty] == [
        (0, 0, 0, None, None, None)] * 2
    assert best_f1(empty) is None
    assert PRF1Point(0.5, 1, 1, 0).to_dict() == {"threshold": 0.5, "tp": 1, "fp": 1, "fn": 0,
                                                 "precision": 0.5, "recall": 1.0, "f1": 2 / 3}
    with pytest.raises(ValueError, match="differ in length: 2 vs 1"):
        prf1_curve([0.1, 0.2], [True], 1, [0.0])
    with pytest.raises(ValueError, match="positives 0 is less than the 1 positive items"):
        prf1_curve([0.1], [True], 0, [0.0])
    grid = confidence_grid()
    assert (len(grid), grid[0], grid[37], grid[-1]) == (101, 0.0, 0.37, 1.0)


def test_box_prf1_uses_cocoeval_matches() -> None:
    gt = {"images": [img(1, "white_1.jpg"), img(2, "white_2.jpg"), img(3, "red_3.jpg")],
          "annotations": [ann(1, 1, [100, 100, 40, 30]), ann(2, 1, [300, 200, 50, 50]),
                          ann(3, 2, [200, 200, 60, 20])], "categories": CATS}
    dets = [det(1, [101, 100, 40, 30], 0.9), det(1, [300, 201, 50, 50], 0.8),  # both match
            det(2, [500, 50, 30, 30], 0.7), det(3, [10, 10, 30, 30], 0.6),  # false boxes
            det(3, [50, 50, 30, 30], 0.1), det(1, [102, 100, 40, 30], 0.05)]  # a duplicate
    # 3 GT boxes, photo 2's never found; the duplicate of a matched box is a false box
    curve = box_prf1(gt, dets, thresholds=[0.0, 0.75, 0.85])
    assert [(p.tp, p.fp, p.fn) for p in curve] == [(2, 4, 1), (2, 0, 1), (1, 0, 2)]


def test_part_prf1_counts_are_the_part_levels() -> None:
    scores = {1: 0.9, 2: 0.4, 3: 0.7}  # photo 4 has no detection: score 0
    part = part_level(scores, {1: True, 2: True, 3: False, 4: False},
                      {1: "white", 2: "white", 3: "red", 4: "red"}, {}, ["white", "red"])
    for group in ("all", "white", "red"):
        for point in part_prf1(part, group=group):
            at = part.at(point.threshold, group)
            assert (point.tp, point.fp, point.fn) == (at.caught, at.rejected,
                                                      at.scratched - at.caught)
    by_t = {p.threshold: p for p in part_prf1(part)}
    assert (by_t[0.5].tp, by_t[0.5].fp, by_t[0.0].fp) == (1, 1, 2)  # at 0 every part fails
