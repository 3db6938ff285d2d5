"""Augmentations keep boxes consistent with the pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from scratchdet.training.config import TrainConfig
from scratchdet.training.transforms import (
    PhotoMetricDistortion,
    build_train_transforms,
    resized_size,
)


def _sample(w: int = 120, h: int = 80) -> tuple[tv_tensors.Image, dict[str, object]]:
    image = torch.full((3, h, w), 0.5)
    image[:, 10:30, 20:60] = 1.0  # the "scratch": a bright bar at x 20-60, y 10-30
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[20.0, 10.0, 60.0, 30.0], [100.0, 50.0, 110.0, 70.0]]),
        format="XYXY", canvas_size=(h, w),
    )
    return tv_tensors.Image(image), {"boxes": boxes, "labels": torch.tensor([1, 1])}


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4608, 3072), (1200, 800)), ((3072, 4608), (800, 1200)), ((2000, 500), (1333, 333)),
     ((384, 384), (800, 800))],
)
def test_resized_size_keeps_ratio_within_1333x800(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert resized_size(*size, 1333, 800) == expected


def test_flip_maps_boxes_exactly() -> None:
    image, target = _sample()
    cfg = TrainConfig(hflip_p=1.0, photometric=False, ssr_p=0.0)
    out_img, out = build_train_transforms(cfg)(image, target)
    assert out["boxes"].tolist() == [[60.0, 10.0, 100.0, 30.0], [10.0, 50.0, 20.0, 70.0]]
    assert torch.equal(out_img, image.flip(-1))
    bar = (out_img[0] > 0.9).nonzero()
    assert (bar[:, 1].min().item(), bar[:, 1].max().item() + 1) == (60, 100)


def test_photometric_changes_pixels_not_boxes() -> None:
    torch.manual_seed(0)
    image, target = _sample()
    tf = PhotoMetricDistortion()
    changed = 0
    for _ in range(10):
        out_img, out = tf(image, target)
        assert torch.equal(out["boxes"], target["boxes"])
        assert out_img.shape == image.shape
        assert out_img.min() >= 0.0 and out_img.max() <= 1.0
        changed += int(not torch.equal(out_img, image))
    assert changed >= 8  # all five steps skipped has probability 1/32 (x 10 draws)


def test_shift_scale_rotate_keeps_boxes_on_the_bar() -> None:
    torch.manual_seed(3)
    image, target = _sample()
    cfg = TrainConfig(hflip_p=0.0, photometric=False, ssr_p=1.0, ssr_rotate=0.0)
    for _ in range(5):
        out_img, out = build_train_transforms(cfg)(image, target)
        x1, y1, x2, y2 = out["boxes"][0].round().int().tolist()
        bar = (out_img[0] > 0.75).nonzero()  # affine fill is 0, background 0.5
        assert abs(bar[:, 1].min().item() - x1) <= 1 and abs(bar[:, 1].max().item() + 1 - x2) <= 1
        assert abs(bar[:, 0].min().item() - y1) <= 1 and abs(bar[:, 0].max().item() + 1 - y2) <= 1


def test_sanitize_drops_boxes_pushed_off_the_photo() -> None:
    image, target = _sample()
    shift = v2.Compose([v2.RandomAffine(degrees=0, translate=(0.5, 0.5)),
                        v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1)])
    torch.manual_seed(0)
    counts = {len(shift(image, target)[1]["labels"]) for _ in range(30)}
    assert counts <= {0, 1, 2} and min(counts) < 2


def test_photo_size_must_match_its_record(tmp_path: Path) -> None:
    from PIL import Image

    from scratchdet.data.records import ImageRecord
    from scratchdet.training.datamodule import load_photo

    path = tmp_path / "p.jpg"
    Image.new("RGB", (40, 30)).save(path)
    assert load_photo(ImageRecord(7, "p.jpg", 40, 30, path=path), (20, 15)).shape == (3, 15, 20)
    with pytest.raises(ValueError, match=r"p\.jpg: photo is 40x30, image record 7 says 30x40"):
        load_photo(ImageRecord(7, "p.jpg", 30, 40, path=path), (20, 15))
