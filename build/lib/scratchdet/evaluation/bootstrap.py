"""Bootstrap confidence intervals of AP over photos: how much a number can move with the photos.

A table over 24 photos and 4 red boxes is one draw. :func:`bootstrap_ap` resamples the photos
of each subgroup with replacement (``samples`` times, seeded), re-evaluates AP with the same
pycocotools path as :func:`scratchdet.evaluation.evaluate` (each resampled copy of a photo
becomes its own image, with its boxes and detections), and reports the percentile interval.
Resamples without any ground-truth box have no AP and are left out (``valid`` counts the
others). The interval covers the photo sample only, not training noise (another seed or device
trains another model; see ``docs/demo.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scratchdet.evaluation.bands import all_band
from scratchdet.evaluation.coco_eval import coco_from_dict, results_coco, run_cocoeval, summarise
from scratchdet.evaluation.evaluator import group_values
from scratchdet.evaluation.inputs import Detections, GroundTruth, load_inputs
from scratchdet.evaluation.result import ALL_GROUP


@dataclass(frozen=True)
class BootstrapCI:
    """AP of one subgroup on its photos and the bootstrap percentile interval."""

    group: str
    value: float  # on the photos as they are (-1: no ground-truth box)
    low: float
    high: float
    valid: int  # resamples holding at least one box
    samples: int

    def text(self) -> str:
        if self.valid == 0:
            return f"{self.group} n/a (no box)"
        return f"{self.group} {self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def ap_of(coco: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
          iou: str = "0.50", max_dets: int = 100) -> float:
    """AP at ``iou`` ("0.50", "0.75" or "0.50:0.95") over all photos of ``coco`` (-1: no box)."""
    gt = coco_from_dict(coco)
    thresholds = [float(iou)] if iou != "0.50:0.95" else None
    ev = run_cocoeval(gt, results_coco(gt, detections), (all_band(),), None, max_dets,
                      thresholds)
    return summarise(ev, (iou,))[("AP", iou, "all")]


def resample(coco: Mapping[str, Any], by_image: Mapping[int, list[Mapping[str, Any]]],
             picks: Sequence[int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO dict and detections holding the photos ``picks`` (ids, repeats allowed), each
    copy renumbered 1..n with its boxes and its detections."""
    images = {int(im["id"]): im for im in coco["images"]}
    anns: dict[int, list[Mapping[str, Any]]] = {}
    for a in coco["annotations"]:
        anns.setdefault(int(a["image_id"]), []).append(a)
    out_images, out_anns, out_dets = [], [], []
    for k, old in enumerate(picks, start=1):
        out_images.append({**images[old], "id": k})
        for a in anns.get(old, []):
            out_anns.append({**a, "image_id": k, "id": len(out_anns) + 1})
        out_dets += [{**d, "image_id": k} for d in by_image.get(old, [])]
    return ({"images": out_images, "annotations": out_anns,
             "categories": list(coco["categories"])}, out_dets)


def bootstrap_ap(gt: GroundTruth, detections: Detections, group_by: str | None = "colour",
                 iou: str = "0.50", samples: int = 200, seed: int = 0, level: float = 0.95,
                 max_dets: int = 100) -> dict[str, BootstrapCI]:
    """Subgroup -> AP at ``iou`` with its ``level`` bootstrap interval (see module doc)."""
    if samples < 1 or not 0 < level < 1:
        raise ValueError(f"need samples >= 1 and 0 < level < 1, got {samples}, {level}")
    inputs = load_inputs(gt, detections)
    ids = [int(im["id"]) for im in inputs.coco["images"]]
    members = {ALL_GROUP: ids}
    if group_by is not None:
        for v in group_values(inputs.attributes, group_by, None):
            members[v] = [i for i in ids if inputs.attributes.get(i, {}).get(group_by) == v]
    by_image: dict[int, list[Mapping[str, Any]]] = {}
    for d in inputs.detections:
        by_image.setdefault(int(d["image_id"]), []).append(d)
    rng = np.random.default_rng(seed)
    out = {}
    for name, group in members.items():
        value = ap_of(*resample(inputs.coco, by_image, group), iou, max_dets)
        values = []
        for _ in range(samples):
            picks = [int(i) for i in rng.choice(group, size=len(group), replace=True)]
            ap = ap_of(*resample(inputs.coco, by_image, picks), iou, max_dets)
            if ap >= 0:
                values.append(ap)
        tail = (1 - level) / 2 * 100
        low, high = (np.percentile(values, [tail, 100 - tail]) if values else (-1.0, -1.0))
        out[name] = BootstrapCI(name, value, float(low), float(high), len(values), samples)
    return out


def bootstrap_text(cis: Mapping[str, BootstrapCI], iou: str = "0.50", level: float = 0.95) -> str:
    """One line: ``AP50 95% interval over N photo resamples: all 0.628 [0.5, 0.7], ...``."""
    name = "AP50" if iou == "0.50" else f"AP{iou}"
    n = next(iter(cis.values())).samples if cis else 0
    return (f"{name} {level:.0%} bootstrap interval ({n} photo resamples): "
            + ", ".join(c.text() for c in cis.values()))
