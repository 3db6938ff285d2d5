"""The types every layer shares: a photo's detections and the pass/fail rule.

Torch-free on purpose: the station (ONNX Runtime, no torch) uses them as training does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["pass", "fail"]

#: Where a part fails when nothing else says: a box scoring at least this.
DEFAULT_THRESHOLD = 0.5
#: The tile grid of a model that states none: tile side and least overlap, in pixels.
DEFAULT_TILE_SIZE = 1024
DEFAULT_TILE_OVERLAP = 256
#: ``max_single`` of the default fast path: the part region runs as one input up to this side
#: (larger regions in a few pieces). Prediction, validation, the demo, cross-validation, the
#: service and the benchmark all use it, so the accuracy reported is that of the timed path.
#: Measured by cross-validation (24 photos, same fold models): AP50 0.489 vs 0.504 with the
#: training tiles (one box of 45), at 1.5-2x less model time.
DEFAULT_MAX_SINGLE = 2560


def verdict(max_score: float, threshold: float) -> Verdict:
    """The one verdict rule: a part fails when its best box scores at least ``threshold``."""
    return "fail" if max_score >= threshold else "pass"


@dataclass(frozen=True)
class Detections:
    """Boxes of one image: ``boxes`` float32 ``[K, 4]`` xyxy pixels, ``scores`` float32
    ``[K]``, ``labels`` int64 ``[K]`` (from 1). Sorted by falling score where a predictor
    made them."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or self.labels.shape != (n,) or self.scores.ndim != 1:
            raise ValueError(f"detections: expected boxes [K, 4], scores [K], labels [K], got "
                             f"{self.boxes.shape}, {self.scores.shape}, {self.labels.shape}")

    @classmethod
    def from_arrays(cls, boxes: Sequence | np.ndarray, scores: Sequence | np.ndarray,
                    labels: Sequence | np.ndarray) -> Detections:
        """Detections in the documented dtypes (float32, float32, int64)."""
        return cls(np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                   np.asarray(scores, dtype=np.float32).reshape(-1),
                   np.asarray(labels, dtype=np.int64).reshape(-1))

    @classmethod
    def empty(cls) -> Detections:
        return cls.from_arrays(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> Detections:
        """The detections where the boolean mask (or index array) ``keep`` says."""
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])

    def max_score(self) -> float:
        """The best score (0 when there is no box)."""
        return float(self.scores.max()) if len(self.scores) else 0.0
