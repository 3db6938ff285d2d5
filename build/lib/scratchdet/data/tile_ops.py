"""Helpers of the tile dataset: tile placement, box transforms, jitter, structure, mined
hard negatives (pure functions except :func:`read_detections`, which reads a file)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scratchdet.data.records import ImageRecord
from scratchdet.geometry.tiling import Tile


def random_tile_over(
    box: Sequence[float], window: Tile, tile: int, rng: np.random.Generator
) -> Tile:
    """A random ``tile`` square inside ``window`` that contains ``box`` (or lies inside it).

    When ``box`` is smaller than the tile the tile contains it, at a uniform offset; when it
    is larger the tile lies inside it. Near the window edge the tile is shifted back inside
    (the box is then only partly in it); a window smaller than ``tile`` gives a smaller tile.
    """
    starts = []
    for lo_box, hi_box, lo_win, hi_win in (
        (box[0], box[2], window[0], window[2]),
        (box[1], box[3], window[1], window[3]),
    ):
        size = min(tile, hi_win - lo_win)
        a, b = sorted((int(np.ceil(hi_box)) - size, int(np.floor(lo_box))))
        a, b = max(a, lo_win), min(b, hi_win - size)
        if a > b:  # box near the window edge: the closest valid start
            a = b = min(max(a, lo_win), hi_win - size)
        starts.append((int(rng.integers(a, b + 1)), size))
    (x, w), (y, h) = starts
    return (x, y, x + w, y + h)


def rot90_boxes(boxes: np.ndarray, k: int, width: int, height: int) -> np.ndarray:
    """Boxes after ``np.rot90(image, k)`` (counter-clockwise) of a ``width x height`` image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for _ in range(k % 4):
        b = np.stack([b[:, 1], width - b[:, 2], b[:, 3], width - b[:, 0]], axis=1)
        width, height = height, width
    return b


def hflip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Boxes after a left-right flip of an image ``width`` px wide."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1)


def vflip_boxes(boxes: np.ndarray, height: int) -> np.ndarray:
    """Boxes after a top-bottom flip of an image ``height`` px high."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], height - b[:, 3], b[:, 2], height - b[:, 1]], axis=1)


def color_jitter(image: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Random brightness, contrast and saturation factors in ``1 +- amount`` (float 0-1).

    Brightness ``b`` and contrast ``c`` (about the mean) fold into one affine map applied after
    the saturation mix with the per-pixel grey; all in place, one pass each.
    """
    b, c, s = (float(v) for v in rng.uniform(1 - amount, 1 + amount, size=3))
    mean = float(image[:, ::4, ::4].mean())
    grey = image.mean(dim=0, keepdim=True)
    image.mul_(s).add_(grey, alpha=1 - s)
    return image.mul_(b * c).add_((1 - c) * b * mean).clamp_(0, 1)


def structure_points(pixels: np.ndarray, part: np.ndarray, top: float = 0.05,
                     step: int = 8) -> np.ndarray:
    """Window (x, y) of the ``top`` share of part cells with the strongest structure.

    The window is block-averaged by ``step`` px to grey; structure is the gradient magnitude
    ``|dx| + |dy|`` (central differences) of that grey, counted on cells whose centre is on
    ``part`` (flat cells never count). Returns int64[K, 2] cell centres, possibly empty.
    """
    hh, ww = pixels.shape[0] // step, pixels.shape[1] // step
    if hh < 3 or ww < 3:
        return np.zeros((0, 2), dtype=np.int64)
    blocks = pixels[: hh * step, : ww * step].reshape(hh, step, ww, step, -1)
    grey = blocks.mean(axis=(1, 3, 4))
    grad = np.zeros_like(grey)
    grad[1:-1, 1:-1] = (np.abs(grey[1:-1, 2:] - grey[1:-1, :-2])
                        + np.abs(grey[2:, 1:-1] - grey[:-2, 1:-1]))
    centre = step // 2
    on = part[centre::step, centre::step][:hh, :ww]
    on[[0, -1], :] = False
    on[:, [0, -1]] = False
    if not on.any():
        return np.zeros((0, 2), dtype=np.int64)
    cut = np.quantile(grad[on], 1 - top)
    rows, cols = np.nonzero(on & (grad >= cut) & (grad > 0))
    return np.stack([cols * step + centre, rows * step + centre], axis=1).astype(np.int64)


def xyxy(record: ImageRecord) -> np.ndarray:
    """The record's boxes as float[N, 4] xyxy."""
    b = np.array([box.bbox for box in record.boxes], dtype=np.float64).reshape(-1, 4)
    b[:, 2:] += b[:, :2]
    return b


def mined_points(records: Sequence[ImageRecord], detections: Sequence[Mapping[str, Any]],
                 min_score: float) -> list[tuple[int, float, float]]:
    """``(record index, x, y)`` centres of the false boxes among ``detections``.

    A detection (COCO results: ``image_id``, ``bbox`` xywh, ``score``) is false when its score
    is at least ``min_score`` and its centre lies inside no ground-truth box of its photo;
    detections of photos not in ``records`` are ignored.
    """
    index = {r.id: i for i, r in enumerate(records)}
    truth = [xyxy(r) for r in records]
    points = []
    for det in detections:
        i = index.get(int(det["image_id"]))
        if i is None or float(det["score"]) < min_score:
            continue
        x, y, w, h = (float(v) for v in det["bbox"])
        cx, cy = x + w / 2, y + h / 2
        gt = truth[i]
        if len(gt) and np.any((gt[:, 0] <= cx) & (cx <= gt[:, 2]) & (gt[:, 1] <= cy)
                              & (cy <= gt[:, 3])):
            continue
        points.append((i, cx, cy))
    return points


def read_detections(path: str | Path) -> list[dict[str, Any]]:
    """A COCO results json (a list of detections with image_id, bbox, score)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read as COCO results json ({err})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of detections, got {type(data).__name__}")
    for k, det in enumerate(data):
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= set(det) \
                or len(det["bbox"]) != 4:
            raise ValueError(f"{path}: detection {k} needs image_id, bbox [x, y, w, h] and "
                             f"score, got {det!r:.120}")
    return data
