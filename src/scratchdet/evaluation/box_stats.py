"""What an operator sees at a threshold: boxes per scratch and false boxes per clean photo.

COCO AP ranks every box; the station shows only the boxes scoring at least its threshold.
:func:`box_stats` counts, at one ``threshold`` and IoU ``iou`` (boxes ``[x, y, w, h]``):

- for each ground-truth box, the detections of its photo that overlap it at IoU >= ``iou``
  (``matched_per_gt``: 1 is one box per scratch; 0 a miss; 3 a stack of fragments);
- for each clean photo (no ground-truth box), its detections (``false_per_clean``);
- on scratched photos, the detections that overlap no ground-truth box at ``iou``
  (``unmatched_on_scratched``: fragments, mis-sized boxes and look-alikes);
- the scratched photos a station would fail at ``threshold`` (any box), and how many of them
  it fails *for a labelled scratch*: a box lying on one (at least half of the smaller of the
  two boxes inside the other, :data:`ON_SCRATCH`). A part failed only for boxes elsewhere is
  caught by a look-alike, not because its scratch was seen (``caught_elsewhere``).

Pure numpy; photos are those of the ground truth, detections of other photos are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scratchdet.geometry.nested import intersection_over_smaller
from scratchdet.geometry.tiling import box_iou

#: A box lies on a scratch when this share of the smaller of the two lies inside the other
#: (a fragment inside a long scratch's box, or a large box around a short scratch).
ON_SCRATCH = 0.5


@dataclass(frozen=True)
class BoxStats:
    """Counts at one threshold (see the module docstring)."""

    threshold: float
    iou: float
    matched_per_gt: tuple[int, ...]
    false_per_clean: tuple[int, ...]
    unmatched_on_scratched: int
    scratched_photos: int = 0
    scratched_caught: int = 0  # scratched photos with a box at the threshold
    caught_on_scratch: int = 0  # ... with one of those boxes on a labelled scratch

    @property
    def caught_elsewhere(self) -> int:
        return self.scratched_caught - self.caught_on_scratch

    @property
    def median_matched(self) -> float:
        return float(np.median(self.matched_per_gt)) if self.matched_per_gt else 0.0

    @property
    def max_matched(self) -> int:
        return max(self.matched_per_gt, default=0)

    @property
    def missed(self) -> int:
        return sum(m == 0 for m in self.matched_per_gt)

    @property
    def mean_false_per_clean(self) -> float:
        return float(np.mean(self.false_per_clean)) if self.false_per_clean else 0.0

    def text(self) -> str:
        """One line: ``at 0.5: boxes per scratch median 1 (max 3), 2/45 missed; ...``."""
        n_gt, n_clean = len(self.matched_per_gt), len(self.false_per_clean)
        return (f"at {self.threshold:g} (IoU {self.iou:g}): boxes per scratch median "
                f"{self.median_matched:g} (max {self.max_matched}), {self.missed}/{n_gt} "
                f"missed; {self.unmatched_on_scratched} unmatched boxes on scratched photos; "
                f"false boxes per clean photo {self.mean_false_per_clean:.2f} "
                f"({sum(self.false_per_clean)} on {n_clean}); scratched photos with a box "
                f"{self.scratched_caught}/{self.scratched_photos}, {self.caught_elsewhere} of "
                "them with none on a labelled scratch")

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "iou": self.iou,
                "median_matched": self.median_matched, "max_matched": self.max_matched,
                "missed": self.missed, "ground_truth": len(self.matched_per_gt),
                "unmatched_on_scratched": self.unmatched_on_scratched,
                "false_per_clean_photo": self.mean_false_per_clean,
                "clean_photos": len(self.false_per_clean),
                "scratched_photos": self.scratched_photos,
                "scratched_caught": self.scratched_caught,
                "caught_on_scratch": self.caught_on_scratch}


def _xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def box_stats(gt: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
              threshold: float, iou: float = 0.5) -> BoxStats:
    """Counts of ``detections`` scoring >= ``threshold`` against the COCO dict ``gt``."""
    gt_by_image: dict[int, list] = {int(im["id"]): [] for im in gt["images"]}
    for ann in gt.get("annotations", []):
        gt_by_image.setdefault(int(ann["image_id"]), []).append(ann["bbox"])
    det_by_image: dict[int, list] = {}
    for d in detections:
        if d["score"] >= threshold and int(d["image_id"]) in gt_by_image:
            det_by_image.setdefault(int(d["image_id"]), []).append(d["bbox"])
    matched: list[int] = []
    false_clean: list[int] = []
    unmatched = caught = on_scratch = 0
    for image_id, gts in gt_by_image.items():
        dets = det_by_image.get(image_id, [])
        if not gts:
            false_clean.append(len(dets))
            continue
        if not dets:
            matched += [0] * len(gts)
            continue
        hit = box_iou(_xyxy(gts), _xyxy(dets)) >= iou
        matched += [int(n) for n in hit.sum(1)]
        unmatched += int((~hit.any(0)).sum())
        caught += 1
        on_scratch += bool((intersection_over_smaller(_xyxy(gts), _xyxy(dets))
                            >= ON_SCRATCH).any())
    scratched = sum(bool(g) for g in gt_by_image.values())
    return BoxStats(float(threshold), float(iou), tuple(matched), tuple(false_clean), unmatched,
                    scratched, caught, on_scratch)
