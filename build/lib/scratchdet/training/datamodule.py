"""Photos + COCO boxes -> batches for the detector, as a ``LightningDataModule``.

``input_mode: resize`` (the seed) decodes each photo at reduced JPEG scale, resizes it to fit
``resize`` keeping the ratio, and scales the boxes alike. ``input_mode: tiles`` trains on native-
resolution tiles from ``scratchdet.data.tiles`` and validates on whole photos through the
tiled predictor (the val batch then carries only ``metas`` with the photo ``path``). With
``red_polarity`` both modes show red parts in the white parts' polarity, as the model spec's
predictor will (``scratchdet.data.windows``).

A batch is ``(images, targets, metas)``: ``images`` a list of ``Tensor[3, H, W]`` in 0-1,
``targets`` torchvision targets (``boxes`` xyxy in pixels of the image given, ``labels`` from
1), ``metas`` dicts with ``image_id`` and ``scale`` ``(sx, sy)`` from original to given pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from scratchdet.config import ConfigError, validate_config
from scratchdet.data.records import Dataset, ImageRecord, load_coco_records
from scratchdet.data.tiles import TileConfig, TileDataset
from scratchdet.data.windows import whole_photo_is_red
from scratchdet.imaging import decode_draft, white_polarity
from scratchdet.training.config import TrainConfig
from scratchdet.training.transforms import build_train_transforms, resized_size

Sample = tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, Any]]
Batch = tuple[list[torch.Tensor], list[dict[str, torch.Tensor]], list[dict[str, Any]]]


def load_split(annotations: Path, images: Path, what: str) -> Dataset:
    """Records of one split, keeping only photos present; an error when none is."""
    if not Path(annotations).is_file():
        raise ConfigError(f"{what}_annotations: {annotations} is not a file")
    data = load_coco_records(annotations, images, only_present=True)
    if len(data) == 0:
        raise ConfigError(
            f"{what}: none of the photos listed in {annotations} is in {images} "
            f"(expected the files named by its 'images[].file_name')"
        )
    return data


def category_labels(data: Dataset, class_names: list[str] | None) -> dict[int, int]:
    """COCO category id -> label (1..K), in the order of ``class_names`` (else of the ids)."""
    if class_names is None:
        return {cid: i + 1 for i, cid in enumerate(sorted(data.categories))}
    by_name = {name: cid for cid, name in data.categories.items()}
    missing = [n for n in class_names if n not in by_name]
    if missing:
        raise ConfigError(
            f"class_names: {missing} not among the categories of {data.source} "
            f"(expected some of {sorted(by_name)})"
        )
    return {by_name[n]: i + 1 for i, n in enumerate(class_names)}


def load_photo(record: ImageRecord, size: tuple[int, int],
               red_polarity: bool = False) -> torch.Tensor:
    """The photo as ``Tensor[3, h, w]`` in 0-1 at ``size`` = (w, h); JPEG decoded reduced.
    With ``red_polarity`` a red part in the white parts' polarity, decided on the whole photo
    as a ``resize`` model's predictor decides it (``data.windows.whole_photo_is_red``)."""
    assert record.path is not None
    with Image.open(record.path) as img:
        if img.size != (record.width, record.height):
            raise ValueError(
                f"{record.path}: photo is {img.size[0]}x{img.size[1]}, image record "
                f"{record.id} says {record.width}x{record.height} (boxes would not match)"
            )
    rgb, _ = decode_draft(record.path, size)  # JPEG: the smallest 1/2^k scale still >= size
    if red_polarity and whole_photo_is_red(record.path):
        rgb = white_polarity(rgb)
    tensor = F.to_dtype(F.pil_to_tensor(rgb), torch.float32, scale=True)
    if (tensor.shape[2], tensor.shape[1]) != size:
        tensor = F.resize(tensor, [size[1], size[0]], antialias=True)
    return tensor


class ResizedPhotos(TorchDataset):
    """Whole photos resized to fit ``resize`` (long, short), with their boxes."""

    def __init__(
        self,
        data: Dataset,
        labels: dict[int, int],
        resize: tuple[int, int],
        transforms: Callable[..., Any] | None = None,
        red_polarity: bool = False,
    ) -> None:
        self.records = data.present
        self.labels = labels
        self.resize = resize
        self.transforms = transforms
        self.red_polarity = red_polarity

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        rec = self.records[index]
        w, h = resized_size(rec.width, rec.height, *self.resize)
        sx, sy = w / rec.width, h / rec.height
        kept = [b for b in rec.boxes if b.category_id in self.labels]
        boxes = [(x * sx, y * sy, (x + bw) * sx, (y + bh) * sy) for x, y, bw, bh in
                 (b.bbox for b in kept)]
        labels = [self.labels[b.category_id] for b in kept]
        image = tv_tensors.Image(load_photo(rec, (w, h), self.red_polarity))
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                format="XYXY",
                canvas_size=(h, w),
            ),
            "labels": torch.tensor(labels, dtype=torch.int64),
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        plain = {"boxes": target["boxes"].as_subclass(torch.Tensor), "labels": target["labels"]}
        return image.as_subclass(torch.Tensor), plain, {"image_id": rec.id, "scale": (sx, sy)}


def collate(samples: list[Sample]) -> Batch:
    """Lists of images, targets and metas (detectors take lists of differently sized images)."""
    images, targets, metas = zip(*samples, strict=True)
    return list(images), list(targets), list(metas)


def tile_dataset(cfg: TrainConfig, data: Dataset, labels: dict[int, int]) -> TorchDataset:
    """``scratchdet.data.tiles.TileDataset`` from ``tile_size`` and ``tile_options``.

    The tile dataset flips, rotates and jitters by itself (``tile_options``); the transforms
    of this config (flip, photometric, shift-scale-rotate) are applied after.
    """
    return TileDataset(data.present, labels, tile_config(cfg), tile_size=cfg.tile_size,
                       transforms=build_train_transforms(cfg))


def tile_config(cfg: TrainConfig) -> TileConfig:
    """``tile_options`` (and the run's seed and ``red_polarity``) validated into a
    ``data.tiles.TileConfig``: training photos in the polarity the model spec predicts in.

    Raises:
        ConfigError: an unknown key or a bad value, named; ``tile_options.red_polarity``
            (the top-level ``red_polarity`` sets it, for training and prediction alike).
    """
    if "red_polarity" in cfg.tile_options:
        raise ConfigError("tile_options.red_polarity: set the top-level red_polarity instead "
                          "(it is the model spec's too, so training and prediction agree)")
    options = {"seed": cfg.seed, "red_polarity": cfg.red_polarity, **cfg.tile_options}
    return validate_config(TileConfig, options, source="tile_options")


class WholePhotos(TorchDataset):
    """Validation in tiles mode: only the photo path and id; the module tiles the photo."""

    def __init__(self, data: Dataset) -> None:
        self.records = data.present

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        rec = self.records[index]
        meta = {"image_id": rec.id, "path": str(rec.path), "scale": (1.0, 1.0)}
        return torch.zeros(0), {}, meta


class DetectionDataModule(L.LightningDataModule):
    """Train and val loaders for a :class:`TrainConfig`."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.cfg = cfg
        paths = cfg.data_paths()
        self.train_data = load_split(paths["train_annotations"], paths["train_images"], "train")
        self.val_data = load_split(paths["val_annotations"], paths["val_images"], "val")
        self.labels = category_labels(self.train_data, cfg.class_names)
        #: COCO category id of each label, label 1 first.
        self.category_ids = sorted(self.labels, key=self.labels.__getitem__)
        self.class_names = [self.train_data.categories[cid] for cid in self.category_ids]

    def train_dataloader(self) -> DataLoader:
        if self.cfg.input_mode == "tiles":
            dataset = tile_dataset(self.cfg, self.train_data, self.labels)
        else:
            tf = build_train_transforms(self.cfg)
            dataset = ResizedPhotos(self.train_data, self.labels, self.cfg.resize, tf,
                                    self.cfg.red_polarity)
        return self._loader(dataset, self.cfg.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        dataset: TorchDataset
        if self.cfg.input_mode == "tiles":
            dataset = WholePhotos(self.val_data)
        else:
            dataset = ResizedPhotos(self.val_data, self.labels, self.cfg.resize,
                                    red_polarity=self.cfg.red_polarity)
        return self._loader(dataset, self.cfg.val_batch_size, shuffle=False)

    def _loader(self, dataset: TorchDataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.cfg.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=workers,
            collate_fn=collate,
            persistent_workers=workers > 0,
        )
