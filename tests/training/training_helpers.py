"""Helpers for training tests: a tiny synthetic COCO set, a tiny config, and a crop of one
real sample photo around one of its boxes written as a tiny COCO set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scratchdet.data.records import ImageRecord, load_coco_records
from scratchdet.training.config import TrainConfig


def write_synthetic(root: Path, n: int = 4, size: tuple[int, int] = (96, 64)) -> Path:
    """``n`` grey JPEGs with one dark bar each (the box), train.json/val.json over all."""
    images, anns = [], []
    w, h = size
    for i in range(n):
        name = f"{'white' if i % 2 else 'red'}_syn{i}.jpg"
        pix = np.full((h, w, 3), 200, np.uint8)
        x, y = 10 + 5 * i, 12 + 3 * i
        pix[y : y + 20, x : x + 40] = 30
        Image.fromarray(pix).save(root / name, quality=95)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1,
                     "bbox": [x, y, 40, 20], "area": 800, "iscrowd": 0})
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "scratch"}]}
    ann = root / "coco.json"
    ann.write_text(json.dumps(coco), encoding="utf-8")
    return ann


def tiny_config(root: Path, ann: Path, **extra: Any) -> TrainConfig:
    """A 1-epoch CPU config on ``ann``; small model input, no augmentation, no workers."""
    values: dict[str, Any] = {
        "model": "lite0_fpn_fast",
        "model_overrides": {"fpn_channels": 32},
        "train_annotations": ann, "train_images": ann.parent,
        "val_annotations": ann, "val_images": ann.parent,
        "resize": [96, 64], "epochs": 1, "batch_size": 2, "warmup_iters": 0,
        "hflip_p": 0.0, "photometric": False, "ssr_p": 0.0,
        "num_workers": 0, "accelerator": "cpu", "devices": 1,
        "output_dir": root / "runs", "run_name": "t", "progress_bar": False,
        "loggers": ["csv"], "log_every_n_steps": 1,
    }
    values.update(extra)
    return TrainConfig.model_validate(values)



def pick_box(sample: Path, file_name: str, index: int) -> ImageRecord:
    """The train record of ``file_name`` (its box ``index`` is the one to find)."""
    data = load_coco_records(sample / "annotations" / "train.json", sample / "train",
                             only_present=True)
    rec = next(r for r in data.images if r.file_name == file_name)
    assert len(rec.boxes) > index
    return rec


def write_crop(
    rec: ImageRecord, index: int, size: int, out: Path, copies: int
) -> tuple[Path, list[float]]:
    """Crop ``size`` px centred on box ``index``; boxes clipped to the crop (slivers dropped).

    Writes ``crop.jpg``, ``train.json`` (the crop listed ``copies`` times, so an epoch holds
    several steps) and ``val.json`` (once). Returns the folder and the box in crop ``xyxy``.
    """
    x, y, w, h = rec.boxes[index].bbox
    x0 = int(x + w / 2 - size / 2)
    y0 = int(y + h / 2 - size / 2)
    assert rec.path is not None
    with Image.open(rec.path) as img:
        img.crop((x0, y0, x0 + size, y0 + size)).save(out / "crop.jpg", quality=95)
    anns = []
    for b in rec.boxes:
        bx1, by1 = max(b.bbox[0] - x0, 0), max(b.bbox[1] - y0, 0)
        bx2 = min(b.bbox[0] + b.bbox[2] - x0, size)
        by2 = min(b.bbox[1] + b.bbox[3] - y0, size)
        if bx2 - bx1 >= 16 and by2 - by1 >= 16:
            anns.append([bx1, by1, bx2 - bx1, by2 - by1])
    target = [x - x0, y - y0, x - x0 + w, y - y0 + h]
    for name, n in (("train.json", copies), ("val.json", 1)):
        images = [{"id": i + 1, "file_name": "crop.jpg", "width": size, "height": size}
                  for i in range(n)]
        annotations = [
            {"id": len(anns) * i + j + 1, "image_id": i + 1, "category_id": 1, "bbox": b,
             "area": b[2] * b[3], "iscrowd": 0}
            for i in range(n) for j, b in enumerate(anns)
        ]
        coco = {"images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "scratch"}]}
        (out / name).write_text(json.dumps(coco), encoding="utf-8")
    return out, target


def write_subset(sample: Path, split: str, file_names: list[str], out: Path) -> Path:
    """A COCO json of ``split`` restricted to ``file_names`` (photos stay in the sample)."""
    coco = json.loads((sample / "annotations" / f"{split}.json").read_text(encoding="utf-8"))
    images = [i for i in coco["images"] if i["file_name"] in file_names]
    ids = {i["id"] for i in images}
    coco = {**coco, "images": images,
            "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}
    out.write_text(json.dumps(coco), encoding="utf-8")
    return out
