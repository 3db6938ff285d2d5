"""Tiny synthetic photos and COCO files for the dataset tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .builders import coco_dict

MakeJpeg = Callable[..., Path]
WriteCoco = Callable[..., Path]


@pytest.fixture
def make_jpeg() -> MakeJpeg:
    """``make_jpeg(path, size=(64, 48), orientation=None)``: a small real JPEG file."""

    def make(path: Path, size: tuple[int, int] = (64, 48), orientation: int | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        im = Image.new("RGB", size, (120, 120, 120))
        exif = Image.Exif()
        if orientation is not None:
            exif[0x0112] = orientation
        im.save(path, "JPEG", exif=exif.tobytes())
        return path

    return make


@pytest.fixture
def write_coco() -> WriteCoco:
    """``write_coco(path, images, boxes)``: write :func:`coco_dict` to ``path``."""

    def write(path: Path, images: list[Any], boxes: list[Any], **kw: Any) -> Path:
        path.write_text(json.dumps(coco_dict(images, boxes, **kw)), encoding="utf-8")
        return path

    return write


@pytest.fixture
def tiny_dataset(tmp_path: Path, make_jpeg: MakeJpeg, write_coco: WriteCoco) -> Path:
    """``tmp/ann.json`` + ``tmp/img/``: two valid 64x48 photos, one with two boxes."""
    make_jpeg(tmp_path / "img" / "white_a.jpg")
    make_jpeg(tmp_path / "img" / "red_b.jpg")
    images = [(1, "white_a.jpg", 64, 48), (2, "red_b.jpg", 64, 48)]
    boxes = [(1, 1, [2, 3, 10, 5]), (2, 1, [40, 30, 24, 18])]
    return write_coco(tmp_path / "ann.json", images, boxes)
