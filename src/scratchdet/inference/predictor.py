"""Native-resolution prediction on a photo: localise, tile, detect, map back, merge.

Any detector following torchvision's conventions works: ``model(list[Tensor[3, h, w]])``
returns ``list[{"boxes": FloatTensor[K, 4] xyxy, "scores": [K], "labels": Int64[K]}]``.

Steps of :meth:`TiledPredictor.predict` (each timed, in seconds, in ``timings``):

- ``decode``: JPEG decode (PIL); with ``scale < 1`` a JPEG draft decode at 1/2, 1/4 or 1/8
  (resized to the exact scale when that is not one of them);
- ``localise``: reduction of the decoded photo to 1/8 of the original +
  :func:`inference.localize.locate_part`;
- ``model``: tiles of the region (:func:`inference.tiling.tile_grid`) cut, converted and run
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
import torch
from PIL import Image

from scratchdet.inference.localize import LocalizeConfig, Region, locate_part
from scratchdet.inference.tiling import (
    Tile,
    boxes_from_tile,
    merge_tile_detections,
    region_pieces,
    tile_grid,
)
from scratchdet.inference.tta import flip_image, fuse_outputs

Detector = Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]]

#: ``max_side`` of the default fast path: the part region runs as one input up to this side
#: (larger regions in a few pieces). Prediction, validation, the demo, cross-validation, the
#: service and the benchmark all use it, so the accuracy reported is that of the timed path.
#: Measured by cross-validation (24 photos, same fold models): AP50 0.489 vs 0.504 with the
#: training tiles (one box of 45), at 1.5-2x less model time.
DEFAULT_MAX_SINGLE = 2560


@dataclass
class TiledPrediction:
    """Detections in original photo pixels (torchvision format), with how they were found."""

    detections: dict[str, torch.Tensor]
    region: Region
    tiles: list[Tile]
    timings: dict[str, float] = field(default_factory=dict)


class TiledPredictor:
    """Run ``model`` over the tiles of the part region of a photo.

    Args:
        model: a torchvision-convention detector (put in eval mode here when an nn.Module).
        tile_size, min_overlap: the tile grid (the overlap should exceed most scratch sizes).
        batch_size: tiles per model call.
        score_threshold: detections below are dropped before merging.
        localize: settings of the part localisation (``None``: the defaults).
        whole_photo: skip localisation and tile the whole photo.
        merge: keyword arguments of :func:`merge_tile_detections` (edge_tol, fuse_overlap,
            nms_iou).
        device: where tiles are sent.
        scale: decode the photo at this scale (0 < scale <= 4; 0.5 uses the fast JPEG draft
            decode, above 1 the photo is enlarged); detections are returned in original pixels.
        max_single: run the part region, at the decoded scale, as inputs of their own size
            instead of square tiles: one input when it is at most this many pixels on both
            sides, else the fewest near-equal pieces of at most this side overlapping by
            ``min_overlap`` (:func:`inference.tiling.region_pieces`); the model must accept any
            size. ``None``: always ``tile_size`` tiles.
        tta: flips of each input run besides the input itself (``"h"``, ``"v"``, ``"hv"``),
            fused per input by :func:`inference.tta.fuse_outputs`; each costs one more pass.
    """

    def __init__(
        self,
        model: Detector,
        tile_size: int = 1024,
        min_overlap: int = 256,
        batch_size: int = 4,
        score_threshold: float = 0.05,
        localize: LocalizeConfig | None = None,
        whole_photo: bool = False,
        merge: dict[str, float] | None = None,
        device: str | torch.device = "cpu",
        scale: float = 1.0,
        max_single: int | None = None,
        tta: tuple[str, ...] = (),
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 < scale <= 4:
            raise ValueError(f"scale must be in (0, 4], got {scale}")
        self.scale, self.max_single = scale, max_single
        self.device = torch.device(device)
        self.model = model
        if isinstance(model, torch.nn.Module):
            model.eval().to(self.device)
        self.tile_size, self.min_overlap = tile_size, min_overlap
        self.batch_size, self.score_threshold = batch_size, score_threshold
        self.localize = None if whole_photo else (localize or LocalizeConfig())
        self.merge = dict(merge or {})
        self.tta = tuple(tta)

    def predict(self, photo: str | Path | Image.Image) -> TiledPrediction:
        """Detections for one photo (a path or an already opened PIL image)."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        image, full_size = _decode(photo, self.scale)
        timings["decode"] = time.perf_counter() - start
        t = time.perf_counter()
        region = self._region(image, full_size)
        sx, sy = image.width / full_size[0], image.height / full_size[1]
        tiles = self._tiles(image, region, sx, sy)
        timings["localise"] = time.perf_counter() - t
        t = time.perf_counter()
        outputs = self._run(image, tiles)
        timings["model"] = time.perf_counter() - t
        t = time.perf_counter()
        detections = self._merge(outputs, tiles)
        if (sx, sy) != (1.0, 1.0):
            detections["boxes"] /= torch.tensor([sx, sy, sx, sy], dtype=torch.float32)
        timings["merge"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        return TiledPrediction(detections, region, tiles, timings)

    def _region(self, image: Image.Image, full_size: tuple[int, int]) -> Region:
        """The part region in original pixels, from a 1/``draft_scale`` view of the photo."""
        if self.localize is None:
            return Region((0, 0, *full_size), True, "localisation off")
        factor = max(1, round(self.localize.draft_scale * image.width / full_size[0]))
        small = np.asarray(image.reduce(factor)) if factor > 1 else np.asarray(image)
        return locate_part(small, full_size, self.localize)

    def _tiles(self, image: Image.Image, region: Region, sx: float, sy: float) -> list[Tile]:
        """Tiles in decoded pixels: the scaled region alone when it fits ``max_single``."""
        x0, y0, x1, y1 = region.box
        box = (
            max(int(x0 * sx), 0), max(int(y0 * sy), 0),
            min(math.ceil(x1 * sx), image.width), min(math.ceil(y1 * sy), image.height),
        )
        if self.max_single:
            return region_pieces(box, self.max_single, self.min_overlap)
        return tile_grid(image.width, image.height, self.tile_size, self.min_overlap, box)

    @torch.inference_mode()
    def _run(self, image: Image.Image, tiles: Sequence[Tile]) -> list[dict[str, torch.Tensor]]:
        outputs: list[dict[str, torch.Tensor]] = []
        for i in range(0, len(tiles), self.batch_size):
            batch = [
                torch.from_numpy(np.array(image.crop(tile)))
                .permute(2, 0, 1)
                .to(self.device)
                .float()
                .div_(255)
                for tile in tiles[i : i + self.batch_size]
            ]
            if not self.tta:
                outputs.extend(self.model(batch))
                continue
            passes = [self.model(batch)]
            passes += [self.model([flip_image(x, f) for x in batch]) for f in self.tta]
            flips = ("", *self.tta)
            outputs.extend(fuse_outputs([p[k] for p in passes], flips, x.shape[-1], x.shape[-2])
                           for k, x in enumerate(batch))
        return outputs

    def _merge(
        self, outputs: Sequence[dict[str, torch.Tensor]], tiles: Sequence[Tile]
    ) -> dict[str, torch.Tensor]:
        boxes, scores, labels, tile_of = [], [], [], []
        for k, (out, tile) in enumerate(zip(outputs, tiles, strict=True)):
            keep = out["scores"] >= self.score_threshold
            b = out["boxes"][keep].detach().cpu().double().numpy()
            boxes.append(boxes_from_tile(b, tile))
            scores.append(out["scores"][keep].detach().cpu().double().numpy())
            labels.append(out["labels"][keep].detach().cpu().numpy())
            tile_of.append(np.full(len(b), k, dtype=np.int64))
        merged = merge_tile_detections(
            np.concatenate(boxes) if boxes else np.zeros((0, 4)),
            np.concatenate(scores) if scores else np.zeros(0),
            np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64),
            np.concatenate(tile_of) if tile_of else np.zeros(0, dtype=np.int64),
            tiles,
            **self.merge,
        )
        order = np.argsort(-merged.scores, kind="stable")
        return {
            "boxes": torch.as_tensor(merged.boxes[order], dtype=torch.float32).reshape(-1, 4),
            "scores": torch.as_tensor(merged.scores[order], dtype=torch.float32),
            "labels": torch.as_tensor(merged.labels[order], dtype=torch.int64),
        }


def _decode(
    photo: str | Path | Image.Image, scale: float = 1.0
) -> tuple[Image.Image, tuple[int, int]]:
    """The RGB photo decoded at ``scale`` and its original ``(width, height)``."""
    if isinstance(photo, Image.Image):
        im, size = photo, photo.size
    else:
        try:
            im = Image.open(photo)
            size = im.size
            if scale < 1:  # JPEG: decode at the smallest 1/2^k scale >= the requested size
                im.draft("RGB", (math.ceil(size[0] * scale), math.ceil(size[1] * scale)))
            im.load()  # decodes, and closes the file of a single-frame JPEG
        except (OSError, SyntaxError) as err:
            raise ValueError(f"{photo}: cannot read as an image ({err})") from None
    im = im if im.mode == "RGB" else im.convert("RGB")
    target = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    if im.size != target:
        im = im.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return im, size
