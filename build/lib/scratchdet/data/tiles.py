"""Training on native-resolution tiles (``input_mode: tiles``).

:class:`TileDataset` draws, for each index of an epoch, one ``tile_size`` square of a photo at
full resolution:

- with probability ``positive_fraction`` a *positive* tile around a random ground-truth box
  (uniform offset, so the box lands anywhere in the tile),
- otherwise a *background* tile at a random place over the part region of a random photo
  (scratched or clean; any boxes it holds are targets too); a ``hard_background`` share of
  them is centred on the part's strongest structure instead (moulded grooves, ribs, edges:
  where false boxes appear, see :func:`structure_points`), or, with ``hard_negatives``, on
  the false boxes an earlier model drew on these photos (mined hard negatives:
  :func:`mined_points`).

With ``red_polarity`` (the training config's, as the model spec's) red parts are decoded in
the white parts' polarity, as the predictor shows them (``data.windows``), and synthesis treats
them as white parts.

``colour_balance`` draws boxes and photos so that each part colour gets the same share of
tiles (the sample has 41 white scratches and 4 red ones).

Tiles stay inside a window around the part (the region of ``geometry.localize`` widened
by ``context`` px, :func:`scratchdet.data.windows.load_window`), which is all that is decoded
and cached. Boxes cut by the tile edge follow
the edge-cut rule of ``geometry.tiling.boxes_into_tile`` (as at inference). Optional copy-
paste synthesis (``data.synthesis``) adds real scratches on clean paint, then flips,
90-degree rotations and a small colour jitter are applied. Every draw is seeded by
``(seed, epoch, index)``: the same on any worker, different each epoch (:meth:`set_epoch`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator

from scratchdet.config import StrictConfig
from scratchdet.data.records import Dataset, ImageRecord, colour_from_name
from scratchdet.data.synthesis import ScratchPatch, SynthesisConfig, cut_scratch, paste_random
from scratchdet.data.tile_ops import (
    color_jitter,
    hflip_boxes,
    mined_points,
    random_tile_over,
    read_detections,
    rot90_boxes,
    vflip_boxes,
    xyxy,
)
from scratchdet.data.windows import PhotoWindow, load_window, part_colour
from scratchdet.geometry.localize import LocalizeConfig
from scratchdet.geometry.tiling import Tile, boxes_into_tile
from scratchdet.structures import DEFAULT_TILE_SIZE

Transform = Callable[[Any, Any], tuple[Any, Any]]


class TileConfig(StrictConfig):
    """Settings of :class:`TileDataset`."""

    tile_size: int = Field(DEFAULT_TILE_SIZE, gt=0)
    samples_per_epoch: int | None = Field(None, gt=0, description="None: 16 x photos")
    positive_fraction: float = Field(0.65, ge=0, le=1)
    context: int = Field(512, ge=0, description="px around the part region tiles may reach")
    min_visible: float = Field(0.25, ge=0, le=1, description="edge-cut rule: visible fraction")
    min_box_size: float = Field(2.0, ge=0, description="edge-cut rule: min clipped side, px")
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    jitter: float = Field(0.1, ge=0, lt=1, description="brightness/contrast/saturation +-")
    hard_background: float = Field(
        0.0, ge=0, le=1, description="share of background tiles centred on strong structure")
    hard_top: float = Field(0.05, gt=0, le=1, description="structure: top share of part cells")
    hard_negatives: str | None = Field(
        None, description="COCO results json of a model's detections on these training "
        "photos: hard background tiles centred on its false boxes instead of structure")
    hard_min_score: float = Field(0.2, ge=0, le=1, description="hard_negatives: lowest score")
    colour_balance: bool = Field(False, description="same tile share for each part colour")
    red_polarity: bool = Field(
        False, description="red parts in the white parts' polarity, as the predictor shows "
        "them (data.windows; set from the training config's red_polarity)")
    max_cached_photos: int = Field(64, ge=0, description="decoded part windows kept in memory")
    seed: int = 0
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    localize: LocalizeConfig = Field(default_factory=LocalizeConfig)

    @model_validator(mode="after")
    def _hard_negatives_need_a_share(self) -> TileConfig:
        if self.hard_negatives and self.hard_background <= 0:
            raise ValueError("hard_negatives is set but hard_background is 0: set "
                             "tile_options.hard_background (e.g. 0.5) to use them")
        return self


@dataclass
class TileSample:
    """One drawn tile before tensor conversion (also used by tests and previews)."""

    image: np.ndarray  # uint8[T, T, 3]
    boxes: np.ndarray  # float[N, 4] xyxy tile pixels
    labels: np.ndarray  # int64[N]
    synthetic: np.ndarray  # bool[N], True for pasted scratches
    record: int
    tile: Tile
    extra: dict[str, Any] = field(default_factory=dict)


class TileDataset(torch.utils.data.Dataset):
    """Native-resolution training tiles; see the module docstring.

    Args:
        data: the training records (a :class:`Dataset` or a sequence of records with paths).
        labels: COCO category id -> label (1..K); default: sorted category ids -> 1..K.
        cfg: tile settings; ``tile_size`` overrides ``cfg.tile_size`` when given.
        transforms: optional torchvision-v2 ``(image, target) -> (image, target)``, applied
            after this dataset's own augmentations.

    Items are ``(image, target, meta)``: ``Tensor[3, T, T]`` float 0-1, ``{"boxes":
    FloatTensor[N, 4] xyxy, "labels": Int64Tensor[N]}`` and ``{"image_id", "tile", "scale"}``.
    """

    def __init__(
        self,
        data: Dataset | Sequence[ImageRecord],
        labels: Mapping[int, int] | None = None,
        cfg: TileConfig | None = None,
        *,
        tile_size: int | None = None,
        transforms: Transform | None = None,
    ) -> None:
        cfg = cfg or TileConfig()
        self.cfg = cfg if tile_size is None else cfg.model_copy(update={"tile_size": tile_size})
        self.records = list(data.images if isinstance(data, Dataset) else data)
        if not self.records:
            raise ValueError("TileDataset: no records (expected photos present on disk)")
        cats = sorted({b.category_id for r in self.records for b in r.boxes})
        self.labels = dict(labels) if labels is not None else {c: i + 1 for i, c in enumerate(cats)}
        unknown = sorted(set(cats) - set(self.labels))
        if unknown:
            raise ValueError(f"category ids {unknown} have no label (labels: {self.labels})")
        self.transforms = transforms
        # shared memory: set_epoch reaches DataLoader workers, persistent ones included
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._box_index = [(i, j) for i, r in enumerate(self.records) for j in range(len(r.boxes))]
        self._cache: OrderedDict[int, PhotoWindow] = OrderedDict()
        self._box_p, self._photo_p = self._draw_weights()
        scratched = sum(r.scratched for r in self.records)
        self.synthesis = self.cfg.synthesis.active(scratched)
        self._bank: list[ScratchPatch] | None = None
        self._mined: list[tuple[int, float, float]] = []
        if self.cfg.hard_negatives:
            self._mined = mined_points(self.records, read_detections(self.cfg.hard_negatives),
                                       self.cfg.hard_min_score)

    def __len__(self) -> int:
        return self.cfg.samples_per_epoch or 16 * len(self.records)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Draw different tiles in each epoch (call at each epoch start; workers see it)."""
        self._epoch[0] = epoch

    def window(self, index: int) -> PhotoWindow:
        """The (cached) decoded part window of record ``index``."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        structure = self.cfg.hard_background > 0 and not self.cfg.hard_negatives
        hard_top = self.cfg.hard_top if structure else None
        win = load_window(self.records[index], self.cfg.tile_size, self.cfg.context,
                          self.cfg.localize, hard_top, self.cfg.red_polarity)
        if self.cfg.max_cached_photos > 0:
            self._cache[index] = win
            while len(self._cache) > self.cfg.max_cached_photos:
                self._cache.popitem(last=False)
        return win

    def bank(self) -> list[ScratchPatch]:
        """The real scratches cut from every box of the records (built on first use)."""
        if self._bank is None:
            s = self.cfg.synthesis
            bank = []
            for i, rec in enumerate(self.records):
                if not rec.scratched:
                    continue
                win = self.window(i)
                shift = np.array(win.window[:2] * 2, dtype=np.float64)
                cats = [[b.category_id] for b in rec.boxes]
                for box in np.hstack([xyxy(rec) - shift, cats]):
                    patch = cut_scratch(win.pixels, box[:4], s.ring, s.feather, rec.file_name,
                                        int(box[4]), part_colour(rec.file_name, win))
                    if patch is not None:
                        bank.append(patch)
            self._bank = bank
        return self._bank

    def _draw_weights(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(box, photo) draw probabilities under ``colour_balance`` (None: uniform)."""
        if not self.cfg.colour_balance:
            return None, None
        colours = [colour_from_name(r.file_name) for r in self.records]

        def balanced(keys: list[str]) -> np.ndarray | None:
            if not keys:
                return None
            counts = {k: keys.count(k) for k in set(keys)}
            p = np.array([1.0 / counts[k] for k in keys])
            return p / p.sum()

        return balanced([colours[i] for i, _ in self._box_index]), balanced(colours)

    @staticmethod
    def _pick(n: int, p: np.ndarray | None, rng: np.random.Generator) -> int:
        return int(rng.integers(n)) if p is None else int(rng.choice(n, p=p))

    def _draw_tile(self, rng: np.random.Generator) -> tuple[int, Tile]:
        t = self.cfg.tile_size
        if self._box_index and rng.random() < self.cfg.positive_fraction:
            rec, j = self._box_index[self._pick(len(self._box_index), self._box_p, rng)]
            win = self.window(rec)
            return rec, random_tile_over(xyxy(self.records[rec])[j], win.window, t, rng)
        hard = self.cfg.hard_background
        if self._mined and rng.random() < hard:
            rec, x, y = self._mined[int(rng.integers(len(self._mined)))]
            return rec, random_tile_over((x, y, x + 1, y + 1), self.window(rec).window, t, rng)
        rec = self._pick(len(self.records), self._photo_p, rng)
        win = self.window(rec)
        if hard > 0 and len(win.hard) and rng.random() < hard:
            x, y = win.hard[int(rng.integers(len(win.hard)))] + np.array(win.window[:2])
            return rec, random_tile_over((x, y, x + 1, y + 1), win.window, t, rng)
        h, w = win.part.shape
        ys, xs = rng.integers(h, size=64), rng.integers(w, size=64)
        on = np.flatnonzero(win.part[ys, xs])
        if len(on):  # over the part: a random part pixel, the tile anywhere around it
            x, y = xs[on[0]] + win.window[0], ys[on[0]] + win.window[1]
            return rec, random_tile_over((x, y, x + 1, y + 1), win.window, t, rng)
        return rec, random_tile_over(win.window, win.window, t, rng)

    def sample(self, index: int) -> TileSample:
        """Draw tile ``index`` of the current epoch (before tensor conversion)."""
        rng = np.random.default_rng((self.cfg.seed, self.epoch, index))
        rec_i, tile = self._draw_tile(rng)
        rec, win = self.records[rec_i], self.window(rec_i)
        wx0, wy0 = win.window[:2]
        x0, y0, x1, y1 = tile[0] - wx0, tile[1] - wy0, tile[2] - wx0, tile[3] - wy0
        image = win.pixels[y0:y1, x0:x1]
        assert image.shape[:2] == (tile[3] - tile[1], tile[2] - tile[0]), (tile, win.window)
        photo_boxes = xyxy(rec)
        kept = boxes_into_tile(photo_boxes, tile, self.cfg.min_visible, self.cfg.min_box_size)
        cats = np.array([rec.boxes[k].category_id for k in kept.index], dtype=np.int64)
        labels = np.array([self.labels[c] for c in cats], dtype=np.int64)
        boxes, synthetic = kept.boxes, np.zeros(len(kept.boxes), dtype=bool)
        s = self.cfg.synthesis
        if self.synthesis and rng.random() < s.probability:
            count = int(rng.integers(1, s.max_per_tile + 1))
            occupied = photo_boxes - np.array(tile[:2] * 2, dtype=np.float64)
            image, pasted, pasted_cats = paste_random(
                image, win.part[y0:y1, x0:x1], occupied, self.bank(), rng, s, count,
                part_colour(rec.file_name, win),
            )
            boxes = np.concatenate([boxes, pasted])
            labels = np.concatenate([labels, [self.labels[c] for c in pasted_cats]])
            synthetic = np.concatenate([synthetic, np.ones(len(pasted), dtype=bool)])
        image, boxes = self._geometric(np.ascontiguousarray(image), boxes, rng)
        return TileSample(image, boxes, labels.astype(np.int64), synthetic, rec_i, tile)

    def _geometric(
        self, image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        if self.cfg.hflip and rng.random() < 0.5:
            image, boxes = image[:, ::-1], hflip_boxes(boxes, w)
        if self.cfg.vflip and rng.random() < 0.5:
            image, boxes = image[::-1], vflip_boxes(boxes, h)
        if self.cfg.rot90:
            k = int(rng.integers(4))
            image, boxes = np.rot90(image, k), rot90_boxes(boxes, k, w, h)
        return np.ascontiguousarray(image), boxes

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        if not 0 <= index < len(self):
            raise IndexError(f"tile index {index} out of range 0..{len(self) - 1}")
        s = self.sample(index)
        image = torch.from_numpy(s.image).permute(2, 0, 1).contiguous().float().div_(255)
        if self.cfg.jitter > 0:
            rng = np.random.default_rng((self.cfg.seed, self.epoch, index, 1))
            image = color_jitter(image, self.cfg.jitter, rng)
        target = {
            "boxes": torch.as_tensor(s.boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor(s.labels, dtype=torch.int64),
        }
        if self.transforms is not None:
            image, target = self._apply_transforms(image, target)
        meta = {"image_id": self.records[s.record].id, "tile": s.tile, "scale": (1.0, 1.0)}
        return image, target, meta

    def _apply_transforms(
        self, image: torch.Tensor, target: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from torchvision import tv_tensors

        h, w = image.shape[-2:]
        boxes = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w))
        img, out = self.transforms(tv_tensors.Image(image), {**target, "boxes": boxes})
        plain = {"boxes": out["boxes"].as_subclass(torch.Tensor), "labels": out["labels"]}
        return img.as_subclass(torch.Tensor), plain
