"""Thin, silent wrappers around pycocotools' COCOeval (the only box matching we use).

Subgroups are evaluated by setting ``params.imgIds`` *before* ``evaluate()``: on the seed's
test split this gives numbers identical (bit for bit) to evaluating the subset files
``reference/{white,red}_coco.json``. Restricting only ``accumulate(p)`` to a subset is NOT
equivalent: pycocotools 2.0.x indexes ``evalImgs`` with positions in ``p.imgIds`` rather than
in the evaluated image list, so it would read other photos' results. We never do that.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from scratchdet.evaluation.bands import SizeBand

#: IoU keys the result stores: the COCO average and the two usual single thresholds.
IOU_KEYS: tuple[str, ...] = ("0.50:0.95", "0.50", "0.75")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow pycocotools' progress prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def coco_from_dict(data: Mapping[str, Any]) -> COCO:
    """A pycocotools COCO object over ``data`` (not copied), built silently."""
    coco = COCO()
    coco.dataset = dict(data)
    with _quiet():
        coco.createIndex()
    return coco


def results_coco(gt: COCO, detections: Sequence[Mapping[str, Any]]) -> COCO:
    """Detections as a COCO results object; an empty list gives an empty one.

    pycocotools' ``loadRes`` fails on an empty list and edits the dicts it gets, so we pass
    copies and build the empty case ourselves.
    """
    if detections:
        with _quiet():
            return gt.loadRes([dict(d) for d in detections])
    return coco_from_dict(
        {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]),
         "annotations": []}
    )


def run_cocoeval(
    gt: COCO,
    dt: COCO,
    bands: Sequence[SizeBand],
    img_ids: Sequence[int] | None = None,
    max_dets: int = 100,
    iou_thresholds: Sequence[float] | None = None,
) -> COCOeval:
    """Run ``evaluate()`` and ``accumulate()`` on ``img_ids`` (all photos when None)."""
    ev = COCOeval(gt, dt, "bbox")
    ev.params.areaRng = [[b.lo_area, b.hi_area] for b in bands]
    ev.params.areaRngLbl = [b.name for b in bands]
    ev.params.maxDets = [int(max_dets)]
    if img_ids is not None:
        ev.params.imgIds = sorted(int(i) for i in img_ids)
    if iou_thresholds is not None:
        ev.params.iouThrs = np.asarray(iou_thresholds, dtype=float)
    with _quiet():
        ev.evaluate()
        ev.accumulate()
    return ev


def _iou_index(ev: COCOeval, iou: str) -> list[int]:
    thrs = ev.params.iouThrs
    if iou == "0.50:0.95":
        return list(range(len(thrs)))
    hits = [i for i, t in enumerate(thrs) if np.isclose(t, float(iou))]
    assert hits, f"IoU {iou} not among evaluated thresholds {thrs}"
    return hits


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarise(
    ev: COCOeval, iou_keys: Sequence[str] = IOU_KEYS
) -> dict[tuple[str, str, str], float]:
    """``{(metric, iou, band): value}`` for AP and AR, like COCOeval.summarize (-1: no GT)."""
    precision, recall = ev.eval["precision"], ev.eval["recall"]  # [T,R,K,A,M], [T,K,A,M]
    out: dict[tuple[str, str, str], float] = {}
    for a, band in enumerate(ev.params.areaRngLbl):
        for iou in iou_keys:
            t = _iou_index(ev, iou)
            out[("AP", iou, band)] = _mean_valid(precision[t, :, :, a, -1])
            out[("AR", iou, band)] = _mean_valid(recall[t, :, a, -1])
    return out


def pr_curve(
    ev: COCOeval, iou: float = 0.5, band_index: int = 0
) -> tuple[list[float], list[float]]:
    """Recall grid and interpolated precision (mean over categories; -1 when no GT)."""
    t = _iou_index(ev, f"{iou:.2f}")[0]
    prec = ev.eval["precision"][t, :, :, band_index, -1]  # [R, K]
    curve = [_mean_valid(row) for row in prec]
    return [float(r) for r in ev.params.recThrs], curve
