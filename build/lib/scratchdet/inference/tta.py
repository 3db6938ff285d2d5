"""Test-time augmentation: run the detector on flipped copies of an input and fuse the passes.

Flips: ``"h"`` (left-right), ``"v"`` (up-down), ``"hv"`` (both: a 180 degree turn). Each extra
flip is one more model call per input, so prediction time grows in proportion.

Fusion rule (:func:`fuse_passes`, a weighted box fusion): detections of all passes, in the
input's own pixels, are taken in order of falling score; each joins the first cluster of its
class whose fused box overlaps it at IoU >= ``iou`` and that holds no detection of the same
pass yet, or opens a cluster of its own. A cluster's box is the score-weighted mean of its
members' boxes; its score is the sum of its members' scores divided by the number of passes,
so a box that only one pass of three reports keeps a third of its score. Pure numpy functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratchdet.geometry.tiling import box_iou
from scratchdet.structures import Detections

FLIPS = ("h", "v", "hv")


def parse_tta(text: str) -> tuple[str, ...]:
    """Flips from a comma-separated setting: ``"h,v"`` -> ``("h", "v")``; ``""``/``"none"``: none.

    Raises:
        ValueError: an unknown or repeated flip.
    """
    if text.strip().lower() in ("", "none"):
        return ()
    flips = tuple(part.strip().lower() for part in text.split(","))
    bad = [f for f in flips if f not in FLIPS]
    if bad:
        raise ValueError(f"tta: unknown flip {bad[0]!r}; expected a comma-separated subset of "
                         f"{', '.join(FLIPS)} (or none)")
    if len(set(flips)) != len(flips):
        raise ValueError(f"tta: flip repeated in {text!r}")
    return flips


def flip_array(image: np.ndarray, flip: str) -> np.ndarray:
    """``image[H, W, ...]`` flipped left-right (``"h"``), up-down (``"v"``) or both (``"hv"``),
    as a new contiguous array."""
    axes = {"h": (1,), "v": (0,), "hv": (0, 1)}[flip]
    return np.ascontiguousarray(np.flip(image, axes))


def unflip_boxes(boxes: np.ndarray, width: float, height: float, flip: str) -> np.ndarray:
    """xyxy ``boxes`` found on a ``width`` x ``height`` input flipped by ``flip``, mapped back."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    if "h" in flip:
        out[:, [0, 2]] = width - out[:, [2, 0]]
    if "v" in flip:
        out[:, [1, 3]] = height - out[:, [3, 1]]
    return out


def fuse_passes(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                passes: np.ndarray, n_passes: int,
                iou: float = 0.55) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fused ``(boxes, scores, labels)`` of detections from ``n_passes`` passes (rule above).

    ``passes[i]`` (``0 <= passes[i] < n_passes``) is the pass of detection ``i``. Output is
    sorted by falling score.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    labels, passes = np.asarray(labels, dtype=np.int64), np.asarray(passes, dtype=np.int64)
    if len(passes) and not (passes.min() >= 0 and passes.max() < n_passes):
        raise ValueError(f"pass indices must be in [0, {n_passes}), got {passes.min()}.."
                         f"{passes.max()}")
    n = len(boxes)
    fused, box_sum = np.zeros((n, 4)), np.zeros((n, 4))
    weight, score_sum = np.zeros(n), np.zeros(n)
    label, used = np.zeros(n, dtype=np.int64), np.zeros((n, max(n_passes, 1)), dtype=bool)
    count = 0
    for i in np.argsort(-scores, kind="stable"):
        ok = (label[:count] == labels[i]) & ~used[:count, passes[i]]
        if ok.any():
            ok &= box_iou(fused[:count], boxes[i][None])[:, 0] >= iou
        hits = np.flatnonzero(ok)
        c = int(hits[0]) if len(hits) else count
        if c == count:
            label[c], count = labels[i], count + 1
        w = max(scores[i], 1e-9)
        used[c, passes[i]] = True
        box_sum[c] += w * boxes[i]
        weight[c] += w
        score_sum[c] += scores[i]
        fused[c] = box_sum[c] / weight[c]
    order = np.argsort(-score_sum[:count], kind="stable")
    return fused[order], score_sum[order] / n_passes, label[order]


def fuse_outputs(outputs: Sequence[Detections], flips: Sequence[str],
                 width: int, height: int, iou: float = 0.55) -> Detections:
    """One detector output from the outputs of the passes over one input.

    ``outputs[k]`` came from the input flipped by ``flips[k]`` (``""``: not flipped); boxes are
    mapped back to the input's pixels and fused (:func:`fuse_passes`).
    """
    if len(outputs) != len(flips):
        raise ValueError(f"{len(outputs)} outputs for {len(flips)} flips")
    boxes, scores, labels, passes = [], [], [], []
    for k, (out, flip) in enumerate(zip(outputs, flips, strict=True)):
        b = out.boxes.astype(np.float64)
        boxes.append(unflip_boxes(b, width, height, flip) if flip else b.reshape(-1, 4))
        scores.append(out.scores.astype(np.float64))
        labels.append(out.labels)
        passes.append(np.full(len(b), k, dtype=np.int64))
    fb, fs, fl = fuse_passes(np.concatenate(boxes), np.concatenate(scores),
                             np.concatenate(labels), np.concatenate(passes), len(flips), iou)
    return Detections.from_arrays(fb, fs, fl)
