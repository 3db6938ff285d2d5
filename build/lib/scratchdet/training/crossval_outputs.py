"""What ``crossval`` derives from its pooled evaluation: the boxes an operator would see, the
verdicts at thresholds picked on the other folds, and the threshold stored in the fold models."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scratchdet.artifact import stamp_threshold
from scratchdet.evaluation.box_stats import BoxStats, box_stats
from scratchdet.evaluation.fold_pick import FoldPick, fold_pick
from scratchdet.evaluation.image_level import TargetPick
from scratchdet.evaluation.verdict_threshold import DEFAULT_TARGET_RECALL
from scratchdet.evaluation.workflow import EvaluationRun
from scratchdet.structures import DEFAULT_THRESHOLD


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
