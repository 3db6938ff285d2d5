"""Part localisation: synthetic cases and every photo of the real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchdet.data.records import load_coco_records
from scratchdet.geometry.localize import (
    LocalizeConfig,
    binary_open,
    label_components,
    locate_part,
    locate_part_in_file,
    read_reduced,
)
from scratchdet.geometry.tiling import tile_grid

# A 1/8-scale "photo" of 4608x3072: 576x384, grey background with a gentle vignette.
W, H = 576, 384


def _grey() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    lum = 130 - 20 * ((xx / W - 0.5) ** 2 + (yy / H - 0.5) ** 2)
    return np.repeat(lum[..., None], 3, axis=2).astype(np.uint8)


def test_plain_background_falls_back_to_whole_photo() -> None:
    region = locate_part(_grey(), (4608, 3072))
    assert region.fallback and region.box == (0, 0, 4608, 3072)


def test_red_part_and_thin_clips() -> None:
    img = _grey()
    img[100:180, 248:328] = (200, 40, 30)  # red part: 4x4 cells 62..82 x, 25..45 y
    img[150:384, 100:104] = 235  # thin bright clip stand: removed by the opening
    img[150:384, 450:454] = 235
    region = locate_part(img, (4608, 3072), LocalizeConfig(margin=100))
    assert not region.fallback
    assert region.box == (62 * 32 - 100, 25 * 32 - 100, 82 * 32 + 100, 45 * 32 + 100)


def test_white_part_touching_top_border_is_found() -> None:
    img = _grey()
    img[0:200, 200:400] = 240
    region = locate_part(img, (4608, 3072), LocalizeConfig(margin=0))
    assert region.box == (1600, 0, 3200, 1600)


def test_huge_region_falls_back() -> None:
    img = _grey()
    img[10:370, 10:560] = 240
    region = locate_part(img, (4608, 3072))
    assert region.fallback and region.box == (0, 0, 4608, 3072)


def test_morphology_helpers() -> None:
    mask = np.zeros((9, 9), dtype=bool)
    mask[1:6, 1:6] = True  # a 5x5 square survives a 3x3 opening
    mask[0:9, 8] = True  # a 1-wide line does not
    opened = binary_open(mask, 3)
    assert opened[1:6, 1:6].all() and opened.sum() == 25
    two = np.zeros((5, 5), dtype=bool)
    two[0, 0:2] = True
    two[3:5, 3:5] = True
    labels = label_components(two)
    assert len(np.unique(labels[labels >= 0])) == 2 and (labels[~two] == -1).all()


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg"):
        read_reduced(bad)
    Image.new("RGB", (64, 48), (120, 120, 120)).save(tmp_path / "grey.jpg")
    small, size = read_reduced(tmp_path / "grey.jpg")
    assert size == (64, 48) and small.shape == (6, 8, 3)


def test_every_ground_truth_box_of_the_sample_lies_inside_the_region(sample: Path) -> None:
    """All 24 sample photos (train + val), every ground-truth box of each."""
    checked, tiles = 0, []
    for split in ("train", "val"):
        data = load_coco_records(
            sample / "annotations" / f"{split}.json", sample / split, only_present=True
        )
        for rec in data.images:
            region = locate_part_in_file(rec.path)
            # the predictor's path: 1/8 box reduction of the full decode instead of a draft
            with Image.open(rec.path) as im:
                reduced = locate_part(np.asarray(im.reduce(8)), im.size)
            for reg in (region, reduced):
                assert not reg.fallback, (rec.file_name, reg.reason)
                x0, y0, x1, y1 = reg.box
                for box in rec.boxes:
                    bx, by, bw, bh = box.bbox
                    inside = bx >= x0 and by >= y0 and bx + bw <= x1 and by + bh <= y1
                    assert inside, f"{rec.file_name}: box {box.bbox} outside region {reg.box}"
                    checked += 1
            tiles.append(len(tile_grid(rec.width, rec.height, 1024, 256, region.box)))
    assert len(tiles) == 24 and checked == 2 * 45
    assert np.mean(tiles) < 4  # vs 24 tiles for the whole photo


def test_is_red_part_reads_the_region_only() -> None:
    from scratchdet.geometry.localize import is_red_part

    small = np.full((100, 150, 3), 128, dtype=np.uint8)
    small[20:60, 30:90] = (180, 70, 65)  # red paint, 40x60 of the 1/8 view
    full = (1200, 800)
    assert is_red_part(small, (240, 160, 720, 480), full)  # the part
    assert not is_red_part(small, (800, 560, 1200, 800), full)  # grey background only
    # 4% red pixels in the box: under the 5% default, over a 3% setting
    box = (0, 0, 1200, 800)
    sparse = np.full((100, 150, 3), 200, dtype=np.uint8)
    sparse[:6, :100] = (200, 60, 60)
    assert not is_red_part(sparse, box, full) and is_red_part(sparse, box, full, min_frac=0.03)
    with pytest.raises(ValueError, match="RGB"):
        is_red_part(small[..., 0], box, full)
