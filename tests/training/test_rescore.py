"""The rescoring heads: class-balanced logistic regression and out-of-fold fitting."""

from __future__ import annotations

import numpy as np
import pytest

from scratchdet.training.rescore import PhotoCrops, fit_logistic, rescored_detections


def test_fit_logistic_separates_and_balances() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(2, 1, (10, 3)), rng.normal(-2, 1, (200, 3))])
    y = np.concatenate([np.ones(10), np.zeros(200)])
    model = fit_logistic(x, y, l2=0.1)
    p = model.prob(x)
    assert (p[:10] > 0.5).all() and (p[10:] < 0.5).mean() > 0.95
    # class balance: 10 positives are not swamped by 200 negatives
    assert p[:10].mean() > 0.8
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(x[:10], y[:10])


def _photo(image_id: int, fold: int, positive: bool, rng: np.random.Generator) -> PhotoCrops:
    # two detections: the first matches a scratch on positive photos; features say which
    iou = np.array([0.8 if positive else 0.0, 0.0])
    pooled = rng.normal(0, 1, (2, 4)) + np.array([[3.0] * 4, [-3.0] * 4]) * (iou[:, None] > 0.5)
    pooled[1] -= 3.0
    return PhotoCrops(image_id, fold, np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float),
                      np.array([0.6, 0.6]), np.array([1, 1]), iou, pooled,
                      rng.normal(size=(2, 16, 3)), rng.normal(3, 1, (3, 4)),
                      rng.normal(size=(20, 3)))


def test_verifier_rescoring_is_out_of_fold_and_ranks_scratches_first() -> None:
    rng = np.random.default_rng(2)
    photos = [_photo(i, i % 3, i % 2 == 0, rng) for i in range(12)]
    none = rescored_detections(photos, "none")
    assert {d["score"] for d in none} == {0.6}
    got = rescored_detections(photos, "verifier", l2=1.0)
    assert len(got) == 24 and {d["image_id"] for d in got} == set(range(12))
    true = [d["score"] for d in got if d["image_id"] % 2 == 0 and d["bbox"][0] == 0]
    false = [d["score"] for d in got if not (d["image_id"] % 2 == 0 and d["bbox"][0] == 0)]
    assert min(true) > max(false)
    with pytest.raises(ValueError, match="unknown rescoring"):
        rescored_detections(photos, "magic")
