"""``evaluate(...)``: the one evaluator used by training, the CLI and the report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scratchdet.data.records import DEFAULT_COLOURS
from scratchdet.evaluation.bands import SizeBand, all_band, check_bands, seed_bands
from scratchdet.evaluation.coco_eval import (
    coco_from_dict,
    pr_curve,
    results_coco,
    run_cocoeval,
    summarise,
)
from scratchdet.evaluation.image_level import part_level as build_part_level
from scratchdet.evaluation.image_level import photo_max_scores
from scratchdet.evaluation.inputs import Detections, GroundTruth, load_inputs
from scratchdet.evaluation.result import ALL_GROUP, EvaluationResult, GroupSummary


def group_values(
    attributes: Mapping[int, Mapping[str, str]], group_by: str, groups: Sequence[str] | None
) -> tuple[str, ...]:
    """The subgroup columns: ``groups`` when given, else every value of the attribute.

    Default order: for ``colour`` the known colours first (white, red), then the rest
    alphabetically.
    """
    present = {a[group_by] for a in attributes.values() if group_by in a}
    if not present:
        known = sorted({k for a in attributes.values() for k in a})
        raise ValueError(f"group_by '{group_by}': no photo has this attribute; "
                         f"attributes: {', '.join(known) or 'none'}")
    if groups is not None:
        return tuple(g for g in groups if g != ALL_GROUP)
    order = {c: i for i, c in enumerate(DEFAULT_COLOURS)} if group_by == "colour" else {}
    return tuple(sorted(present, key=lambda v: (order.get(v, len(order)), v)))


def _summaries(
    coco: Mapping[str, Any], members: Mapping[str, list[int]], bands: Sequence[SizeBand]
) -> dict[str, GroupSummary]:
    areas: dict[int, list[float]] = {}
    for ann in coco["annotations"]:
        if not ann.get("iscrowd", 0):
            areas.setdefault(int(ann["image_id"]), []).append(float(ann["area"]))
    out = {}
    for name, ids in members.items():
        boxes = {b.name: sum(b.lo_area <= a <= b.hi_area for i in ids for a in areas.get(i, []))
                 for b in bands}
        out[name] = GroupSummary(name, len(ids), sum(1 for i in ids if areas.get(i)), boxes)
    return out


def evaluate(
    gt: GroundTruth,
    detections: Detections,
    bands: Sequence[SizeBand] | None = None,
    group_by: str | None = "colour",
    part_level: bool = False,
    *,
    groups: Sequence[str] | None = None,
    max_dets: int = 100,
    target_recall: float | None = None,
) -> EvaluationResult:
    """COCO AP/AR per size band and subgroup, with pycocotools' COCOeval.

    Args:
        gt: a :class:`~scratchdet.data.records.Dataset`, a COCO dict or a COCO json path.
        detections: COCO result dicts (``image_id``, ``bbox`` [x,y,w,h], ``score``,
            ``category_id``) or a results json path. Every image_id must be in ``gt``.
        bands: named area bands in px^2; None = the seed's (:func:`seed_bands`). The band
            "all" (0 to 1e10) is always evaluated first.
        group_by: image attribute giving the subgroup columns (``colour``, ``state`` or any
            extra key of the COCO images); None = only "all".
        part_level: also compute the part-level view (AUROC, thresholds).
        groups: subgroup values to report, in order; None = every value present.
        max_dets: detections per photo kept by COCOeval.
        target_recall: with ``part_level``, pick the highest threshold reaching it.

    Every photo of ``gt`` is scored (one without a detection as predicted empty); to score
    only the photos a run predicted, pass the ground truth of
    :func:`~scratchdet.evaluation.inputs.scope_inputs` (as ``scratchdet evaluate`` does).

    Raises:
        InvalidInputError: (a ValueError) a bad record in ``gt`` or ``detections`` (NaN,
            infinite, negative-size or non-number box, duplicate id, score not in [0, 1],
            unknown image or category...); all are listed, nothing is scored.
    """
    inputs = load_inputs(gt, detections)
    bands = (all_band(), *check_bands(seed_bands() if bands is None else bands))
    all_ids = [int(img["id"]) for img in inputs.coco["images"]]
    values = () if group_by is None else group_values(inputs.attributes, group_by, groups)
    members = {ALL_GROUP: all_ids}
    for v in values:
        members[v] = [i for i in all_ids if inputs.attributes.get(i, {}).get(group_by) == v]

    coco_gt = coco_from_dict(inputs.coco)
    coco_dt = results_coco(coco_gt, inputs.detections)
    metrics: dict[tuple[str, str, str, str], float] = {}
    curves: dict[str, tuple[float, ...]] = {}
    recall_grid: list[float] = []
    for name, ids in members.items():
        ev = run_cocoeval(coco_gt, coco_dt, bands, ids, max_dets)
        for (metric, iou, band), v in summarise(ev).items():
            metrics[(metric, iou, band, name)] = v
        recall_grid, curve = pr_curve(ev)
        curves[name] = tuple(curve)

    part = None
    if part_level:
        scores = photo_max_scores(inputs.detections)
        scratched = {i: False for i in all_ids}
        for ann in inputs.coco["annotations"]:
            scratched[int(ann["image_id"])] = True
        group_of = {i: v for v in values for i in members[v]}
        part = build_part_level(scores, scratched, group_of, inputs.file_names, values,
                                target_recall)
    return EvaluationResult(
        bands=bands, groups=(ALL_GROUP, *values), group_by=group_by, max_dets=max_dets,
        metrics=metrics, summaries=_summaries(inputs.coco, members, bands),
        recall_grid=tuple(recall_grid), pr_curves=curves, part_level=part, source=inputs.source,
    )
