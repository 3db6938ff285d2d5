"""Square windows around boxes, for a second look at each detection at full resolution.

A window is centred on its box, its side ``grow * max(w, h) + pad`` clipped to
``[min_side, max_side]`` (a long scratch is seen by its central ``max_side`` pixels at native
scale rather than shrunk until it is thinner than a pixel), and shifted, never shrunk, to lie
inside the image when the image is large enough. Pure numpy; boxes ``[x0, y0, x1, y1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropSpec:
    """How a detection's window is cut and the size it is resized to."""

    size: int = 160  # side of the resized crop fed to the verifier
    grow: float = 1.3
    pad: int = 32
    min_side: int = 96
    max_side: int = 640

    def __post_init__(self) -> None:
        if not (0 < self.min_side <= self.max_side and self.size > 0 and self.grow > 0):
            raise ValueError(f"bad crop spec {self}: need 0 < min_side <= max_side, size > 0")


def crop_windows(boxes: np.ndarray, width: int, height: int,
                 spec: CropSpec = CropSpec()) -> np.ndarray:
    """Integer windows ``[N, 4]`` (x0, y0, x1, y1), square unless the image is smaller."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.clip(spec.grow * np.maximum(w, h) + spec.pad, spec.min_side, spec.max_side)
    side = np.round(side).astype(np.int64)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    out = np.empty((len(boxes), 4), dtype=np.int64)
    for axis, (centre, limit) in enumerate(((cx, width), (cy, height))):
        s = np.minimum(side, limit)
        start = np.round(centre - s / 2).astype(np.int64)
        start = np.clip(start, 0, limit - s)
        out[:, axis], out[:, axis + 2] = start, start + s
    return out
