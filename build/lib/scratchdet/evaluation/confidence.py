"""Precision, recall and F1 against the confidence threshold (Ultralytics' P/R/F1 curves).

At threshold ``t`` the items scoring ``>= t`` are kept (the verdict rule of
:func:`scratchdet.structures.verdict`); of those, the ``positive`` ones are true positives.

- Box level: items are detections, positive when COCOeval matched them to a ground-truth box
  at IoU 0.50 (the matches of :func:`scratchdet.evaluation.analysis.analyze_photos`, so no
  matching is re-implemented; COCOeval matches greedily by score, so the matches of the
  detections kept at ``t`` are those of a run on only them). Recall counts every
  ground-truth box.
- Part level: items are photos scored by their best box, positive when scratched
  (:class:`~scratchdet.evaluation.image_level.PartLevelResult`).

:func:`prf1_curve` is pure: a table of exact counts in, a table out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scratchdet.evaluation.analysis import analyze_photos
from scratchdet.evaluation.image_level import PartLevelResult
from scratchdet.evaluation.inputs import Detections, GroundTruth


@dataclass(frozen=True)
class PRF1Point:
    """Counts at one threshold: kept positives (``tp``), kept negatives (``fp``) and
    positives not kept (``fn``)."""

    threshold: float
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        """``tp / (tp + fp)``; None when nothing is kept."""
        kept = self.tp + self.fp
        return self.tp / kept if kept else None

    @property
    def recall(self) -> float | None:
        """``tp / (tp + fn)``; None when there is no positive."""
        pos = self.tp + self.fn
        return self.tp / pos if pos else None

    @property
    def f1(self) -> float | None:
        """``2 tp / (2 tp + fp + fn)`` (the harmonic mean of P and R); None when there is
        neither a kept item nor a positive."""
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else None

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def confidence_grid(steps: int = 100) -> tuple[float, ...]:
    """``steps + 1`` thresholds from 0 to 1 (``0.0, 0.01, ..., 1.0`` by default)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return tuple(round(i / steps, 10) for i in range(steps + 1))


def prf1_curve(scores: Sequence[float], positive: Sequence[bool], positives: int,
               thresholds: Sequence[float]) -> tuple[PRF1Point, ...]:
    """One :class:`PRF1Point` per threshold.

    Args:
        scores: the score of every item (detection or photo).
        positive: per item, whether it is a true positive when kept.
        positives: how many positives exist in all (ground-truth boxes, scratched photos);
            at least the positive items.
        thresholds: where to count; an item is kept when its score >= the threshold.

    Raises:
        ValueError: ``scores`` and ``positive`` differ in length, or ``positives`` is less
            than the positive items.
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    pos = np.asarray(positive, dtype=bool).reshape(-1)
    if s.shape != pos.shape:
        raise ValueError(f"scores and positive differ in length: {s.size} vs {pos.size}")
    if positives < int(pos.sum()):
        raise ValueError(f"positives {positives} is less than the {int(pos.sum())} positive "
                         "items")
    out = []
    for t in thresholds:
        kept = s >= t
        tp = int((kept & pos).sum())
        out.append(PRF1Point(float(t), tp, int(kept.sum()) - tp, positives - tp))
    return tuple(out)


def best_f1(curve: Sequence[PRF1Point]) -> PRF1Point | None:
    """The point of highest F1 (the highest threshold among ties); None without any F1."""
    defined = [p for p in curve if p.f1 is not None]
    if not defined:
        return None
    return max(defined, key=lambda p: (p.f1, p.threshold))


def box_prf1(gt: GroundTruth, detections: Detections,
             thresholds: Sequence[float] = confidence_grid(), max_dets: int = 100,
             ) -> tuple[PRF1Point, ...]:
    """Box-level P/R/F1 of ``detections`` (matched at IoU 0.50 by COCOeval, band "all")."""
    photos = analyze_photos(gt, detections, score_thr=0.0, group_by=None, max_dets=max_dets)
    scores = [float(d.score or 0.0) for p in photos for d in p.detections]
    matched = [d.matched for p in photos for d in p.detections]
    return prf1_curve(scores, matched, sum(p.gt_boxes for p in photos), thresholds)


def part_prf1(part: PartLevelResult, thresholds: Sequence[float] = confidence_grid(),
              group: str = "all") -> tuple[PRF1Point, ...]:
    """Part-level P/R/F1: a photo is kept (rejected) when its score >= the threshold."""
    photos = [p for p in part.photos if group in ("all", p.group)]
    scratched = [p.scratched for p in photos]
    return prf1_curve([p.score for p in photos], scratched, sum(scratched), thresholds)
