"""Native-resolution prediction on a photo: localise, tile, detect, map back, merge.

Any detector following torchvision's conventions works: ``model(list[Tensor[3, h, w]])``
returns ``list[{"boxes": FloatTensor[K, 4] xyxy, "scores": [K], "labels": Int64[K]}]``.

Steps of :meth:`TiledPredictor.predict` (each timed, in seconds, in ``timings``):

- ``decode``: full JPEG decode (PIL);
- ``localise``: 1/8 reduction of the decoded photo + :func:`inference.localize.locate_part`;
- ``model``: tiles of the region (:func:`inference.tiling.tile_grid`) cut, converted and run
  in batches of ``batch_size``;
- ``merge``: tile boxes mapped to photo pixels and merged (:func:`merge_tile_detections`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from scratchdet.inference.localize import LocalizeConfig, Region, locate_part
from scratchdet.inference.tiling import Tile, boxes_from_tile, merge_tile_detections, tile_grid

Detector = Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]]


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
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        if isinstance(model, torch.nn.Module):
            model.eval()
        self.tile_size, self.min_overlap = tile_size, min_overlap
        self.batch_size, self.score_threshold = batch_size, score_threshold
        self.localize = None if whole_photo else (localize or LocalizeConfig())
        self.merge = dict(merge or {})
        self.device = torch.device(device)

    def predict(self, photo: str | Path | Image.Image) -> TiledPrediction:
        """Detections for one photo (a path or an already opened PIL image)."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        image = _decode(photo)
        timings["decode"] = time.perf_counter() - start
        t = time.perf_counter()
        region = self._region(image)
        tiles = tile_grid(image.width, image.height, self.tile_size, self.min_overlap, region.box)
        timings["localise"] = time.perf_counter() - t
        t = time.perf_counter()
        outputs = self._run(image, tiles)
        timings["model"] = time.perf_counter() - t
        t = time.perf_counter()
        detections = self._merge(outputs, tiles)
        timings["merge"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        return TiledPrediction(detections, region, tiles, timings)

    def _region(self, image: Image.Image) -> Region:
        if self.localize is None:
            return Region((0, 0, image.width, image.height), True, "localisation off")
        factor = self.localize.draft_scale
        small = np.asarray(image.reduce(factor)) if factor > 1 else np.asarray(image)
        return locate_part(small, image.size, self.localize)

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
            outputs.extend(self.model(batch))
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


def _decode(photo: str | Path | Image.Image) -> Image.Image:
    if isinstance(photo, Image.Image):
        return photo.convert("RGB") if photo.mode != "RGB" else photo
    try:
        im = Image.open(photo)
        im.load()  # decodes, and closes the file of a single-frame JPEG
    except (OSError, SyntaxError) as err:
        raise ValueError(f"{photo}: cannot read as an image ({err})") from None
    return im if im.mode == "RGB" else im.convert("RGB")
