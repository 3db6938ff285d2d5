"""Per-photo analysis (like MMDetection's analyze_results): AP50, misses and false boxes.

Each photo is evaluated on its own with COCOeval (IoU 0.50, band "all"); its matches come
from the same run, so no matching is re-implemented here. COCOeval matches greedily by
score, so the matches of the detections with ``score >= score_thr`` are exactly those of a
run on only those detections: misses and false boxes are counted at ``score_thr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from scratchdet.evaluation.bands import all_band
from scratchdet.evaluation.coco_eval import coco_from_dict, results_coco, run_cocoeval
from scratchdet.evaluation.inputs import Detections, GroundTruth, load_inputs
from scratchdet.overlay import NEAR_FLOOR


@dataclass(frozen=True)
class BoxView:
    """A box to draw: ``[x, y, w, h]``, its score (None for GT) and whether it matched."""

    bbox: tuple[float, float, float, float]
    score: float | None
    matched: bool


@dataclass(frozen=True)
class PhotoAnalysis:
    """One photo: per-photo AP50 (None without GT), counts at ``score_thr`` and its boxes."""

    image_id: int
    file_name: str
    group: str
    ap50: float | None
    rank_score: float  # ap50; for a clean photo 1.0 without false boxes, else 0.0
    gt_boxes: int
    misses: int
    false_boxes: int
    gt: tuple[BoxView, ...]
    detections: tuple[BoxView, ...]  # score >= score_thr only
    near: tuple[BoxView, ...] = ()  # near-misses: score_thr * NEAR_FLOOR <= score < score_thr

    def summary(self) -> dict[str, Any]:
        """The photo without its boxes (a table row)."""
        row = asdict(self)
        for key in ("gt", "detections", "near"):
            row.pop(key)
        return row


def _photo(ev: Any, coco_dt: Any, coco_gt: Any,
           score_thr: float) -> tuple[list, list, list, float]:
    """GT, detection and near-miss views of the single photo evaluated in ``ev``, and its
    AP50."""
    gts: list[BoxView] = []
    dets: list[BoxView] = []
    near: list[BoxView] = []
    for e in ev.evalImgs:
        if e is None:
            continue
        kept = [j for j, s in enumerate(e["dtScores"]) if s >= score_thr]
        caught = {int(e["dtMatches"][0][j]) for j in kept}
        for gid, ignored in zip(e["gtIds"], e["gtIgnore"], strict=True):
            if not ignored:
                gts.append(BoxView(tuple(coco_gt.anns[gid]["bbox"]), None, gid in caught))
        for j, score in enumerate(e["dtScores"]):
            if e["dtIgnore"][0][j] or score < score_thr * NEAR_FLOOR:
                continue
            view = BoxView(tuple(coco_dt.anns[e["dtIds"][j]]["bbox"]), score,
                           bool(e["dtMatches"][0][j]))
            (dets if score >= score_thr else near).append(view)
    precision = ev.eval["precision"][0, :, :, 0, -1]
    valid = precision[precision > -1]
    ap = float(np.mean(valid)) if valid.size else -1.0
    return gts, dets, near, ap


def analyze_photos(
    gt: GroundTruth,
    detections: Detections,
    score_thr: float = 0.3,
    group_by: str | None = "colour",
    max_dets: int = 100,
) -> list[PhotoAnalysis]:
    """Per-photo AP50, misses and false boxes for every photo of ``gt`` (in ``gt`` order)."""
    inputs = load_inputs(gt, detections)
    coco_gt = coco_from_dict(inputs.coco)
    coco_dt = results_coco(coco_gt, inputs.detections)
    out = []
    for img in inputs.coco["images"]:
        i = int(img["id"])
        ev = run_cocoeval(coco_gt, coco_dt, [all_band()], [i], max_dets, iou_thresholds=[0.5])
        gts, dets, near, ap = _photo(ev, coco_dt, coco_gt, score_thr)
        misses = sum(not g.matched for g in gts)
        false_boxes = sum(not d.matched for d in dets)
        ap50 = ap if ap >= 0 else None
        rank = ap50 if ap50 is not None else float(false_boxes == 0)
        group = inputs.attributes.get(i, {}).get(group_by, "") if group_by else ""
        out.append(PhotoAnalysis(i, inputs.file_names[i], group, ap50, rank, len(gts), misses,
                                 false_boxes, tuple(gts), tuple(dets), tuple(near)))
    return out


def rank_worst(photos: Sequence[PhotoAnalysis]) -> list[PhotoAnalysis]:
    """Worst first: lowest AP50, then most misses, then most false boxes."""
    return sorted(photos, key=lambda p: (p.rank_score, -p.misses, -p.false_boxes, p.file_name))


def rank_best(photos: Sequence[PhotoAnalysis]) -> list[PhotoAnalysis]:
    """Best first: highest AP50, then fewest misses, fewest false boxes, most GT boxes."""
    return sorted(photos, key=lambda p: (-p.rank_score, p.misses, p.false_boxes, -p.gt_boxes,
                                         p.file_name))
