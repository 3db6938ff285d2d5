"""Native-resolution prediction on a photo: localise, tile, detect, map back, merge.

The predictor is torch-free: a :data:`Detector` takes ``list[uint8 array[H, W, 3]]`` (RGB
crops of the decoded photo) and returns one :class:`~scratchdet.structures.Detections` per
crop, in the crop's pixels. ``inference.torch_runtime.TorchDetector`` (PyTorch, any device)
and ``inference.onnx_runtime.OnnxDetector`` (ONNX Runtime) are the two detectors; build both,
and the predictor, through :mod:`scratchdet.inference.load`.

Steps of :meth:`TiledPredictor.predict` (each timed, in seconds, in ``timings``):

- ``decode``: :func:`scratchdet.imaging.decode_at_scale` (with ``scale < 1`` a JPEG draft
  decode at 1/2, 1/4 or 1/8, resized to the exact scale when that is not one of them);
- ``localise``: reduction of the decoded photo to 1/8 of the original +
  :func:`scratchdet.geometry.localize.locate_part`;
- ``model``: tiles of the region (:func:`scratchdet.geometry.tiling.tile_grid`) cut and run
  in batches of ``batch_size``; with ``max_single`` the region is one input (or a few large
  pieces) instead;
- ``merge``: tile boxes mapped to photo pixels and merged (:func:`merge_tile_detections`),
  then scaled back to original pixels.

``region`` is in original pixels; ``tiles`` are in the decoded (scaled) photo's pixels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from scratchdet.geometry.localize import LocalizeConfig, Region, is_red_part, locate_part
from scratchdet.geometry.nested import refine_nested
from scratchdet.geometry.tiling import (
    Tile,
    boxes_from_tile,
    merge_tile_detections,
    region_pieces,
    tile_grid,
)
from scratchdet.imaging import decode_at_scale, white_polarity_array
from scratchdet.inference.tta import flip_array, fuse_outputs
from scratchdet.structures import (  # noqa: F401  (DEFAULT_MAX_SINGLE: re-exported)
    DEFAULT_MAX_SINGLE,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    Detections,
)

#: ``detector(list[uint8 RGB array[H, W, 3]]) -> list[Detections]`` in each input's pixels.
Detector = Callable[[list[np.ndarray]], list[Detections]]



@dataclass
class TiledPrediction:
    """Detections in original photo pixels, with how they were found."""

    detections: Detections
    region: Region
    tiles: list[Tile]
    timings: dict[str, float] = field(default_factory=dict)
    red_as_white: bool = False  # the part was red and shown to the model as a white one


class TiledPredictor:
    """Run ``model`` over the tiles of the part region of a photo.

    Args:
        model: a :data:`Detector` (see :mod:`scratchdet.inference.load` to build one).
        tile_size, min_overlap: the tile grid (the overlap should exceed most scratch sizes).
        batch_size: tiles per model call.
        score_threshold: detections below are dropped before merging.
        localize: settings of the part localisation (``None``: the defaults).
        whole_photo: skip localisation and tile the whole photo.
        merge: keyword arguments of :func:`merge_tile_detections` (edge_tol, fuse_overlap,
            nms_iou).
        scale: decode the photo at this scale (0 < scale <= 4; 0.5 uses the fast JPEG draft
            decode, above 1 the photo is enlarged); detections are returned in original pixels.
        max_single: run the part region, at the decoded scale, as inputs of their own size
            instead of square tiles: one input when it is at most this many pixels on both
            sides, else the fewest near-equal pieces of at most this side overlapping by
            ``min_overlap`` (:func:`geometry.tiling.region_pieces`); the model must accept any
            size. ``None``: always ``tile_size`` tiles.
        tta: flips of each input run besides the input itself (``"h"``, ``"v"``, ``"hv"``),
            fused per input by :func:`inference.tta.fuse_outputs`; each costs one more pass.
        max_side: decode the photo with its long side at most this (a model trained on
            shrunk photos; ``scale`` then follows each photo's size). ``None``: ``scale``.
        nested: ``(mode, ios, decay)`` of :func:`scratchdet.geometry.nested.refine_nested`,
            applied after the merge (``None``: boxes as merged).
        red_polarity: a red part (:func:`scratchdet.geometry.localize.is_red_part`) is shown
            to the model as a white one (:func:`scratchdet.imaging.white_polarity`).
    """

    def __init__(
        self,
        model: Detector,
        tile_size: int = DEFAULT_TILE_SIZE,
        min_overlap: int = DEFAULT_TILE_OVERLAP,
        batch_size: int = 4,
        score_threshold: float = 0.05,
        localize: LocalizeConfig | None = None,
        whole_photo: bool = False,
        merge: dict[str, float] | None = None,
        scale: float = 1.0,
        max_single: int | None = None,
        tta: tuple[str, ...] = (),
        max_side: int | None = None,
        nested: tuple[str, float, float] | None = None,
        red_polarity: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 < scale <= 4:
            raise ValueError(f"scale must be in (0, 4], got {scale}")
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be >= 1, got {max_side}")
        self.scale, self.max_single, self.max_side = scale, max_single, max_side
        self.model = model
        self.tile_size, self.min_overlap = tile_size, min_overlap
        self.batch_size, self.score_threshold = batch_size, score_threshold
        self.localize = None if whole_photo else (localize or LocalizeConfig())
        self.merge = dict(merge or {})
        self.tta = tuple(tta)
        self.nested = nested
        self.red_polarity = red_polarity

    def predict(self, photo: str | Path | Image.Image) -> TiledPrediction:
        """Detections for one photo (a path or an already opened PIL image)."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        image, full_size = decode_at_scale(photo, self.scale, self.max_side)
        timings["decode"] = time.perf_counter() - start
        t = time.perf_counter()
        factor = self.reduction(image.width, full_size[0])
        small = None if factor is None else (
            np.asarray(image.reduce(factor)) if factor > 1 else np.asarray(image))
        region, red = self.locate(small, full_size)
        tiles = self.plan_tiles((image.width, image.height), full_size, region)
        timings["localise"] = time.perf_counter() - t
        t = time.perf_counter()
        outputs = self._run(image, tiles, red)
        timings["model"] = time.perf_counter() - t
        t = time.perf_counter()
        detections = self.merge_outputs(outputs, tiles, (image.width, image.height), full_size)
        timings["merge"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        return TiledPrediction(detections, region, tiles, timings, red)

    def reduction(self, width: int, full_width: int) -> int | None:
        """The factor that reduces a photo decoded ``width`` wide (of ``full_width`` original
        pixels) to the localisation view (1/``draft_scale`` of the original); ``None`` when
        neither localisation nor the red-part check needs a view."""
        if self.localize is None and not self.red_polarity:
            return None
        draft = self.localize.draft_scale if self.localize is not None else 8
        return max(1, round(draft * width / full_width))

    def locate(self, small: np.ndarray | None,
               full_size: tuple[int, int]) -> tuple[Region, bool]:
        """The part region in original pixels, from ``small`` (the photo reduced by
        :meth:`reduction`, ``uint8 [h, w, 3]``), and whether the part is red and to be shown
        as white (``red_polarity``)."""
        whole = Region((0, 0, *full_size), True, "localisation off")
        if small is None:
            return whole, False
        region = whole if self.localize is None else locate_part(small, full_size, self.localize)
        return region, self.red_polarity and is_red_part(small, region.box, full_size)

    def plan_tiles(self, size: tuple[int, int], full_size: tuple[int, int],
                   region: Region) -> list[Tile]:
        """Model inputs in the pixels of the photo decoded at ``size`` (``(width, height)``;
        ``full_size`` is the original's): the scaled region alone, or a few pieces of it, when
        it fits ``max_single``, else square tiles over it."""
        sx, sy = size[0] / full_size[0], size[1] / full_size[1]
        x0, y0, x1, y1 = region.box
        box = (
            max(int(x0 * sx), 0), max(int(y0 * sy), 0),
            min(math.ceil(x1 * sx), size[0]), min(math.ceil(y1 * sy), size[1]),
        )
        if self.max_single:
            return region_pieces(box, self.max_single, self.min_overlap)
        return tile_grid(size[0], size[1], self.tile_size, self.min_overlap, box)

    def _run(self, image: Image.Image, tiles: Sequence[Tile],
             red: bool = False) -> list[Detections]:
        """Detections of each tile; a red part's tiles in the white parts' polarity."""
        outputs: list[Detections] = []
        for i in range(0, len(tiles), self.batch_size):
            batch = [np.array(image.crop(tile)) for tile in tiles[i : i + self.batch_size]]
            if red:
                batch = [white_polarity_array(x) for x in batch]
            if not self.tta:
                outputs.extend(self.model(batch))
                continue
            passes = [self.model(batch)]
            passes += [self.model([flip_array(x, f) for x in batch]) for f in self.tta]
            flips = ("", *self.tta)
            outputs.extend(fuse_outputs([p[k] for p in passes], flips, x.shape[1], x.shape[0])
                           for k, x in enumerate(batch))
        return outputs

    def merge_outputs(self, outputs: Sequence[Detections], tiles: Sequence[Tile],
                      size: tuple[int, int], full_size: tuple[int, int]) -> Detections:
        """One set of detections in original pixels from each input's detections (in its own
        pixels): mapped to the decoded photo (``size``), merged across tile seams, nested boxes
        refined, scaled to the original (``full_size``), best first."""
        merged = self._merge(outputs, tiles)
        sx, sy = size[0] / full_size[0], size[1] / full_size[1]
        if (sx, sy) == (1.0, 1.0):
            return merged
        boxes = merged.boxes / np.array([sx, sy, sx, sy], dtype=np.float32)
        return Detections(boxes, merged.scores, merged.labels)

    def _merge(self, outputs: Sequence[Detections], tiles: Sequence[Tile]) -> Detections:
        boxes, scores, labels, tile_of = [], [], [], []
        for k, (out, tile) in enumerate(zip(outputs, tiles, strict=True)):
            keep = out.scores >= self.score_threshold
            b = out.boxes[keep].astype(np.float64)
            boxes.append(boxes_from_tile(b, tile))
            scores.append(out.scores[keep].astype(np.float64))
            labels.append(out.labels[keep])
            tile_of.append(np.full(len(b), k, dtype=np.int64))
        merged = merge_tile_detections(
            np.concatenate(boxes) if boxes else np.zeros((0, 4)),
            np.concatenate(scores) if scores else np.zeros(0),
            np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64),
            np.concatenate(tile_of) if tile_of else np.zeros(0, dtype=np.int64),
            tiles,
            **self.merge,
        )
        if self.nested is not None:
            mode, ios, decay = self.nested
            b, s, lab = refine_nested(merged.boxes, merged.scores, merged.labels, mode, ios, decay)
            return Detections.from_arrays(b, s, lab)
        order = np.argsort(-merged.scores, kind="stable")
        return Detections.from_arrays(merged.boxes[order], merged.scores[order],
                                      merged.labels[order])
