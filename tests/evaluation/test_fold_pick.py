"""Fold-wise verdict thresholds: each fold judged at a pick made on the other folds (exact)."""

from __future__ import annotations

import math

import pytest

from scratchdet.evaluation.fold_pick import fold_pick
from scratchdet.evaluation.image_level import PhotoScore

# (name, fold, group, scratched, score)
TABLE = [
    ("A", 0, "white", True, 0.9), ("B", 0, "white", False, 0.3), ("C", 0, "red", True, 0.4),
    ("D", 1, "white", True, 0.8), ("E", 1, "white", False, 0.85), ("F", 1, "red", False, 0.5),
    ("G", 2, "white", True, 0.7), ("H", 2, "red", True, 0.6), ("I", 2, "red", False, 0.2),
]
PHOTOS = [PhotoScore(i, name, score, scratched, group)
          for i, (name, _, group, scratched, score) in enumerate(TABLE)]
FOLDS = {i: fold for i, (_, fold, *_) in enumerate(TABLE)}


def test_one_threshold_for_all_parts() -> None:
    # fold 0 picked on D..I (scratched .8 .7 .6) -> .6: A caught, C missed, B passes;
    # fold 1 on A..C, G..I (.9 .4 .7 .6) -> .4: D caught, E and F rejected;
    # fold 2 on A..F (.9 .4 .8) -> .4: G and H caught, I passes.
    got = fold_pick(PHOTOS, FOLDS, 1.0)
    assert got.thresholds == {0: {"all": 0.6}, 1: {"all": 0.4}, 2: {"all": 0.4}}
    p = got.point
    assert (p.caught, p.scratched, p.rejected, p.clean) == (4, 5, 2, 4)
    assert math.isnan(p.threshold) and not got.notes
    assert "catches 4/5 scratched parts, rejects 2/4 clean parts" in got.describe()
    assert got.to_dict()["thresholds"] == {"0": {"all": 0.6}, "1": {"all": 0.4},
                                           "2": {"all": 0.4}}


def test_one_threshold_per_group() -> None:
    # fold 2's white pick sees A .9 and D .8 only -> .8, so G (.7) is missed
    got = fold_pick(PHOTOS, FOLDS, 1.0, per_group=True)
    assert got.thresholds == {0: {"red": 0.6, "white": 0.7}, 1: {"red": 0.4, "white": 0.7},
                              2: {"red": 0.4, "white": 0.8}}
    p = got.point
    assert (p.caught, p.scratched, p.rejected, p.clean) == (3, 5, 2, 4)


def test_lower_target_recall_picks_higher() -> None:
    # recall 0.5: 2 of the other folds' 3 scratched parts -> the second highest score
    got = fold_pick(PHOTOS, FOLDS, 0.5)
    assert got.thresholds[0] == {"all": 0.7} and got.thresholds[2] == {"all": 0.8}


def test_unreachable_target_falls_back_to_lowest_score_with_a_note() -> None:
    photos = [PhotoScore(0, "a", 0.0, True, "all"), PhotoScore(1, "b", 0.7, True, "all"),
              PhotoScore(2, "c", 0.3, False, "all"), PhotoScore(3, "d", 0.9, True, "all")]
    got = fold_pick(photos, {0: 0, 1: 0, 2: 0, 3: 1}, 1.0)
    # fold 1 sees a (no box) and b: recall 1 unreachable -> lowest score 0.3 (c), noted
    assert got.thresholds == {0: {"all": 0.9}, 1: {"all": 0.3}}
    assert len(got.notes) == 1 and got.notes[0].startswith("fold 1, all: recall 1 not reachable")
    # fold 0 at 0.9: a and b missed, c passes; fold 1 at 0.3: d caught
    assert (got.point.caught, got.point.scratched, got.point.rejected) == (1, 3, 0)


def test_bad_folds_are_refused() -> None:
    with pytest.raises(ValueError, match="photos without a fold: I"):
        fold_pick(PHOTOS, {i: f for i, f in FOLDS.items() if i != 8}, 0.95)
    with pytest.raises(ValueError, match="needs >= 2 folds, got 1"):
        fold_pick(PHOTOS, dict.fromkeys(FOLDS, 0), 0.95)
