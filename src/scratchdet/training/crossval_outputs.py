"""What ``crossval`` writes and derives from its pooled evaluation: each fold's facts and the
headline (``crossval.json``), the boxes an operator would see, the verdicts at thresholds
picked on the other folds, and the threshold stored in the fold models."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scratchdet.artifact import stamp_threshold
from scratchdet.evaluation.box_stats import BoxStats, box_stats
from scratchdet.evaluation.fold_pick import FoldPick, fold_pick
from scratchdet.evaluation.image_level import TargetPick
from scratchdet.evaluation.verdict_threshold import DEFAULT_TARGET_RECALL
from scratchdet.evaluation.workflow import EvaluationRun
from scratchdet.inference.predictor import DEFAULT_MAX_SINGLE
from scratchdet.structures import DEFAULT_THRESHOLD


@dataclass(frozen=True)
class FoldFacts:
    """One fold's run: its photos and boxes, its model and how it predicted."""

    fold: int
    train_photos: int
    train_boxes: int
    heldout_photos: int
    heldout_boxes: int
    train_minutes: float | None
    steps: int | None
    model: str
    max_single: int | None = DEFAULT_MAX_SINGLE
    tta: tuple[str, ...] = ()
    scale: float = 1.0
    mined_from: str | None = None
    resumed_from: str | None = None  # the checkpoint an interrupted training went on from
    int8: bool = False  # predicted by its int8 export, calibrated on the fold's training photos

    def to_dict(self) -> dict[str, Any]:
        """The fold's entry of ``crossval.json``."""
        return {**asdict(self), "tta": list(self.tta)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FoldFacts:
        """A fold entry of ``crossval.json`` (keys added later take their defaults)."""
        return cls(data["fold"], data["train_photos"], data["train_boxes"],
                   data["heldout_photos"], data["heldout_boxes"], data["train_minutes"],
                   data["steps"], data["model"], data.get("max_single", DEFAULT_MAX_SINGLE),
                   tuple(data.get("tta") or ()), data.get("scale", 1.0),
                   data.get("mined_from"), data.get("resumed_from"), data.get("int8", False))


@dataclass(frozen=True)
class CrossValHeadline:
    """The headline numbers of the pooled out-of-fold evaluation."""

    ap50: dict[str, float]  # all / white / red (those present) -> pooled AP50
    ap50_ci95: dict[str, list[float]]  # subgroup -> [low, high] (empty without bootstrap)
    ap_all: float  # pooled AP 0.50:0.95 of all photos
    photos: int
    boxes: int
    train_minutes_total: float

    def to_dict(self) -> dict[str, Any]:
        """The ``headline`` of ``crossval.json`` (keys ``oof_AP50_<group>``, ...)."""
        out: dict[str, Any] = {f"oof_AP50_{g}": v for g, v in self.ap50.items()}
        out.update({f"oof_AP50_{g}_ci95": list(ci) for g, ci in self.ap50_ci95.items()})
        out.update(oof_AP_all=self.ap_all, photos=self.photos, boxes=self.boxes,
                   train_minutes_total=self.train_minutes_total)
        return out


@dataclass(frozen=True)
class CrossValResult:
    """Per-fold facts, the pooled evaluation and its headline numbers."""

    out: Path
    folds: tuple[FoldFacts, ...]
    headline: CrossValHeadline
    evaluation: EvaluationRun
    box_stats: tuple[BoxStats, ...] = ()
    fold_picks: tuple[FoldPick, ...] = ()

    @property
    def text(self) -> str:
        """The pooled table, part-level view, bootstrap intervals, box counts and the fold-wise
        threshold picks, as printed."""
        lines = [self.evaluation.full_text.rstrip("\n")]
        lines += [f"boxes {b.text()}" for b in self.box_stats]
        lines += [p.describe() for p in self.fold_picks]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """``crossval.json``: the headline, one entry per fold and the fold-wise picks."""
        return {"headline": self.headline.to_dict(), "folds": [f.to_dict() for f in self.folds],
                "fold_picks": [p.to_dict() for p in self.fold_picks]}


def all_parts_pick(run: EvaluationRun) -> TargetPick | None:
    """The evaluation's target-recall pick for all parts, if it has one."""
    part = run.result.part_level
    return part.groups["all"].target if part is not None and "all" in part.groups else None


def operator_box_stats(run: EvaluationRun, gt: Mapping[str, Any],
                       dets: Sequence[Mapping[str, Any]]) -> tuple[BoxStats, ...]:
    """What the operator would see: at 0.5 and at the threshold picked for all parts."""
    thresholds = [DEFAULT_THRESHOLD]
    pick = all_parts_pick(run)
    if pick is not None and pick.threshold is not None and pick.threshold != DEFAULT_THRESHOLD:
        thresholds.append(pick.threshold)
    return tuple(box_stats(gt, dets, t) for t in thresholds)


def fold_wise_picks(run: EvaluationRun, folds: Mapping[int, int]) -> tuple[FoldPick, ...]:
    """The verdict counts at thresholds picked on the other folds: one for all parts, and one
    per colour (:mod:`scratchdet.evaluation.fold_pick`); none with fewer than two folds."""
    part = run.result.part_level
    if part is None or len({folds[p.image_id] for p in part.photos}) < 2:
        return ()
    return tuple(fold_pick(part.photos, folds, DEFAULT_TARGET_RECALL, per_group=g)
                 for g in (False, True))


def stamp_fold_models(run: EvaluationRun, models: Sequence[str], prediction: str, where: str,
                      log: Callable[[str], None]) -> None:
    """Store the threshold picked on all out-of-fold photos in each fold model file, with how
    it was picked (``where``: the run; target recall and photos; ``prediction``: its settings).
    """
    pick = all_parts_pick(run)
    if pick is None or pick.threshold is None:
        return
    photos = len(run.result.part_level.photos) if run.result.part_level else 0
    how = f"{where}: {pick.message}; picked on {photos} out-of-fold photos; {prediction}"
    present = [m for m in models if Path(m).is_file()]
    for model in present:
        stamp_threshold(model, pick.threshold, how)
    missing = [m for m in models if m not in present]
    if missing:  # folds finished on another machine: only their fold.json came along
        log(f"not stamped, model file absent (a fold finished elsewhere?): {', '.join(missing)}")
    if present:
        log(f"{len(present)} fold model(s) carry threshold {pick.threshold:.4g} ({how})")
