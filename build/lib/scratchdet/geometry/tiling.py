"""Tiling of native-resolution photos: pure functions on numpy arrays.

Conventions: boxes are ``float[N, 4]`` xyxy in pixels; a tile is ``(x0, y0, x1, y1)`` ints with
``x1 - x0`` its width. Nothing here reads files or knows about models.

Grid rule (:func:`tile_grid`): along each axis the area to cover ``[a, b)`` gets
``n = ceil((L - O) / (T - O))`` tiles of size ``T`` (``L = b - a``) whose starts are spread
evenly from ``a`` to ``b - T`` (rounded to ints), so the first tile is flush with ``a``, the last
flush with ``b`` and any two neighbours overlap by at least ``O``. An area shorter than ``T``
gets one tile of size ``T`` centred on it and shifted to stay inside the image; a photo
smaller than ``T`` gets one tile the size of the photo. Tiles never leave the image.

Edge-cut rule (:func:`boxes_into_tile`): a box is clipped to the tile; it is kept when the
visible fraction of its area is at least ``min_visible`` and the clipped box is at least
``min_size`` px on both sides, and it is marked ``truncated`` when less than all of it shows.
Training and inference share this rule.

Merge rule (:func:`merge_tile_detections`), for detections mapped back to photo pixels:

1. A detection is *cut* when it lies within ``edge_tol`` px of an *inner* edge of its tile
   (an edge that is not on the border of the tiled area, so another tile continues there).
   Detections touching the photo border or the outer border of the tiled area are never cut.
2. A cut detection is dropped when another tile holds its whole box away from that tile's own
   inner edges: that tile saw the whole scratch (always true when the overlap ``O`` is at least
   the scratch size) and its own detection stands for it.
3. The remaining cut detections of one class from different tiles that overlap (intersection
   over the smaller box >= ``fuse_overlap``) are fused into their union box, with the highest
   score: a scratch longer than the overlap, seen in parts by two tiles, becomes one box.
4. Class-wise NMS at ``nms_iou`` removes the duplicates that two tiles report in their overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scratchdet.structures import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE

Tile = tuple[int, int, int, int]


def _check_boxes(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4) xyxy, got {arr.shape}")
    return arr


def axis_starts(start: int, stop: int, size: int, tile: int, min_overlap: int) -> list[int]:
    """Tile starts along one axis covering ``[start, stop)`` of an axis of length ``size``.

    Args:
        start, stop: the interval to cover, ``0 <= start < stop <= size``.
        size: length of the image axis (tiles stay inside ``[0, size)``).
        tile: tile length ``T``; when ``size < T`` the only tile is the whole axis.
        min_overlap: minimum overlap ``O`` between neighbours, ``0 <= O < T``.
    """
    if not 0 <= start < stop <= size:
        raise ValueError(f"interval [{start}, {stop}) not inside an axis of length {size}")
    if tile <= 0 or not 0 <= min_overlap < tile:
        raise ValueError(f"need tile > 0 and 0 <= overlap < tile, got {tile}, {min_overlap}")
    if size <= tile:
        return [0]
    length = stop - start
    if length <= tile:
        centred = (start + stop) // 2 - tile // 2
        return [min(max(centred, 0), size - tile)]
    n = math.ceil((length - min_overlap) / (tile - min_overlap))
    span = stop - tile - start
    return [start + round(i * span / (n - 1)) for i in range(n)]


def tile_grid(
    width: int,
    height: int,
    tile: int = DEFAULT_TILE_SIZE,
    min_overlap: int = DEFAULT_TILE_OVERLAP,
    region: Tile | None = None,
) -> list[Tile]:
    """Tiles ``(x0, y0, x1, y1)`` covering ``region`` (default: the whole photo), row-major.

    Tiles are ``tile`` px square (smaller only when the photo is), overlap by at least
    ``min_overlap`` and never leave the photo; see the module docstring for the exact rule.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    x0, y0, x1, y1 = region if region is not None else (0, 0, width, height)
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(x1), width), min(int(y1), height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"region {region} does not overlap the {width}x{height} image")
    tw, th = min(tile, width), min(tile, height)
    xs = axis_starts(x0, x1, width, tile, min_overlap)
    ys = axis_starts(y0, y1, height, tile, min_overlap)
    return [(x, y, x + tw, y + th) for y in ys for x in xs]



def _piece_starts(start: int, stop: int, max_side: int, min_overlap: int) -> tuple[list[int], int]:
    length = stop - start
    if length <= max_side:
        return [start], length
    n = math.ceil((length - min_overlap) / (max_side - min_overlap))
    piece = math.ceil((length + (n - 1) * min_overlap) / n)
    return [start + round(i * (length - piece) / (n - 1)) for i in range(n)], piece


def region_pieces(region: Tile, max_side: int,
                  min_overlap: int = DEFAULT_TILE_OVERLAP) -> list[Tile]:
    """Split ``region`` into the fewest near-equal rectangles of at most ``max_side`` a side.

    Along an axis of length ``L > max_side`` there are ``n = ceil((L - O) / (M - O))`` pieces
    of length ``ceil((L + (n - 1) O) / n)``, spread evenly from one end of the region to the
    other, so neighbours overlap by at least ``O``; a shorter axis is one piece. Pieces never
    leave the region. Row-major. Used for regions too big to run as one input: far fewer
    pixels than square tiles (e.g. 4320x1344 -> two 2288x1344 pieces instead of 12 tiles).
    """
    x0, y0, x1, y1 = (int(v) for v in region)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"region {region} is empty")
    if max_side <= 0 or not 0 <= min_overlap < max_side:
        raise ValueError(f"need max_side > 0 and 0 <= overlap < max_side, got {max_side}, "
                         f"{min_overlap}")
    xs, w = _piece_starts(x0, x1, max_side, min_overlap)
    ys, h = _piece_starts(y0, y1, max_side, min_overlap)
    return [(x, y, x + w, y + h) for y in ys for x in xs]

@dataclass(frozen=True)
class TileBoxes:
    """Boxes of one tile, in tile pixels, with the indices of the source boxes they came from."""

    boxes: np.ndarray  # float[K, 4] xyxy, tile pixels
    index: np.ndarray  # int[K], rows of the input boxes
    truncated: np.ndarray  # bool[K], True when part of the box lies outside the tile


def boxes_into_tile(
    boxes: np.ndarray, tile: Tile, min_visible: float = 0.25, min_size: float = 2.0
) -> TileBoxes:
    """Clip photo-pixel ``boxes`` to ``tile`` and shift them into tile pixels (edge-cut rule)."""
    b = _check_boxes(boxes)
    x0, y0, x1, y1 = tile
    clipped = np.stack(
        [
            np.clip(b[:, 0], x0, x1),
            np.clip(b[:, 1], y0, y1),
            np.clip(b[:, 2], x0, x1),
            np.clip(b[:, 3], y0, y1),
        ],
        axis=1,
    )
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    visible = w * h / area
    keep = (visible >= min_visible) & (w >= min_size) & (h >= min_size)
    idx = np.flatnonzero(keep)
    out = clipped[idx] - np.array([x0, y0, x0, y0], dtype=np.float64)
    return TileBoxes(out, idx, visible[idx] < 1.0 - 1e-9)


def boxes_from_tile(boxes: np.ndarray, tile: Tile) -> np.ndarray:
    """Shift tile-pixel ``boxes`` back to photo pixels, clipped to the tile."""
    b = _check_boxes(boxes)
    x0, y0, x1, y1 = tile
    out = b + np.array([x0, y0, x0, y0], dtype=np.float64)
    out[:, 0::2] = np.clip(out[:, 0::2], x0, x1)
    out[:, 1::2] = np.clip(out[:, 1::2], y0, y1)
    return out


def inner_edges(tiles: Sequence[Tile]) -> np.ndarray:
    """``bool[T, 4]``: for each tile, whether its left, top, right, bottom edge is inner.

    An edge is inner when it is not on the border of the area the tiles cover (their union
    box), i.e. another tile continues past it.
    """
    t = np.asarray(tiles, dtype=np.int64).reshape(-1, 4)
    if len(t) == 0:
        return np.zeros((0, 4), dtype=bool)
    lo_x, lo_y = t[:, 0].min(), t[:, 1].min()
    hi_x, hi_y = t[:, 2].max(), t[:, 3].max()
    return np.stack([t[:, 0] > lo_x, t[:, 1] > lo_y, t[:, 2] < hi_x, t[:, 3] < hi_y], axis=1)


def _touches_inner(box: np.ndarray, tile: np.ndarray, inner: np.ndarray, tol: float) -> bool:
    near = (
        box[0] <= tile[0] + tol,
        box[1] <= tile[1] + tol,
        box[2] >= tile[2] - tol,
        box[3] >= tile[3] - tol,
    )
    return bool(np.any(np.asarray(near) & inner))


def _inside(box: np.ndarray, tile: np.ndarray) -> bool:
    return bool(box[0] >= tile[0] and box[1] >= tile[1] and box[2] <= tile[2] and box[3] <= tile[3])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``float[len(a), len(b)]`` of xyxy boxes."""
    a, b = _check_boxes(a, "a"), _check_boxes(b, "b")
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by class-wise greedy NMS, highest score first."""
    b = _check_boxes(boxes)
    order = np.argsort(-np.asarray(scores), kind="stable")
    labels = np.asarray(labels)
    keep: list[int] = []
    suppressed = np.zeros(len(b), dtype=bool)
    ious = box_iou(b, b)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= (ious[i] > iou) & (labels == labels[i])
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class Detections:
    """Detections in photo pixels: boxes ``float[K, 4]`` xyxy, ``scores[K]``, ``labels[K]``."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


def _fuse_cut(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, tile_of: np.ndarray, overlap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union-fuse overlapping same-class boxes from different tiles (step 3 of the rule)."""
    n = len(boxes)
    group = list(range(n))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    over_small = inter / np.maximum(np.minimum(area[:, None], area[None, :]), 1e-9)
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] == labels[j] and tile_of[i] != tile_of[j] and over_small[i, j] >= overlap:
                group[root(j)] = root(i)
    roots = np.array([root(i) for i in range(n)], dtype=np.int64)
    out_b, out_s, out_l = [], [], []
    for r in np.unique(roots):
        m = roots == r
        out_b.append(np.concatenate([boxes[m, :2].min(0), boxes[m, 2:].max(0)]))
        out_s.append(scores[m].max())
        out_l.append(labels[m][0])
    return np.asarray(out_b).reshape(-1, 4), np.asarray(out_s), np.asarray(out_l, dtype=np.int64)


def merge_tile_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    tile_of: np.ndarray,
    tiles: Sequence[Tile],
    edge_tol: float = 4.0,
    fuse_overlap: float = 0.3,
    nms_iou: float = 0.5,
) -> Detections:
    """Merge detections from overlapping tiles (photo pixels) by the rule in the module docstring.

    Args:
        boxes: ``float[N, 4]`` xyxy in photo pixels (see :func:`boxes_from_tile`).
        scores, labels: ``[N]``.
        tile_of: ``int[N]``, index into ``tiles`` of the tile each detection came from.
        tiles: the tiles the detector ran on.
    """
    b = _check_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    src = np.asarray(tile_of, dtype=np.int64).reshape(-1)
    if not len(b) == len(s) == len(lab) == len(src):
        raise ValueError(
            f"boxes/scores/labels/tile_of lengths differ: {len(b)}, {len(s)}, "
            f"{len(lab)}, {len(src)}"
        )
    t = np.asarray(tiles, dtype=np.float64).reshape(-1, 4)
    inner = inner_edges(tiles)
    cut = np.array(
        [_touches_inner(b[i], t[src[i]], inner[src[i]], edge_tol) for i in range(len(b))],
        dtype=bool,
    )
    keep = np.ones(len(b), dtype=bool)
    for i in np.flatnonzero(cut):
        for k in range(len(t)):
            if (
                k != src[i]
                and _inside(b[i], t[k])
                and not _touches_inner(b[i], t[k], inner[k], edge_tol)
            ):
                keep[i] = False
                break
    whole = keep & ~cut
    part = keep & cut
    fb, fs, fl = _fuse_cut(b[part], s[part], lab[part], src[part], fuse_overlap)
    all_b = np.concatenate([b[whole], fb]).reshape(-1, 4)
    all_s = np.concatenate([s[whole], fs])
    all_l = np.concatenate([lab[whole], fl]).astype(np.int64)
    kept = nms(all_b, all_s, all_l, nms_iou)
    return Detections(all_b[kept], all_s[kept], all_l[kept])
