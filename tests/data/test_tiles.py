"""Native-resolution training tiles: placement, box transforms, the dataset, the sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scratchdet.data.records import BoxRecord, ImageRecord, load_coco_records
from scratchdet.data.synthesis import preview_synthesis
from scratchdet.data.tile_ops import (
    color_jitter,
    hflip_boxes,
    mined_points,
    random_tile_over,
    rot90_boxes,
    structure_points,
    vflip_boxes,
)
from scratchdet.data.tiles import TileConfig, TileDataset, xyxy
from scratchdet.geometry.tiling import boxes_into_tile


def test_random_tile_over_puts_the_box_anywhere_inside() -> None:
    rng = np.random.default_rng(0)
    box, window = (1000.0, 800.0, 1040.0, 900.0), (0, 0, 4608, 3072)
    tiles = np.array([random_tile_over(box, window, 512, rng) for _ in range(2000)])
    assert (tiles[:, 2] - tiles[:, 0] == 512).all() and (tiles[:, 3] - tiles[:, 1] == 512).all()
    assert (tiles[:, 0] <= 1000).all() and (tiles[:, 2] >= 1040).all()
    assert (tiles[:, 1] <= 800).all() and (tiles[:, 3] >= 900).all()
    # box at the left / right edge of the tile both happen: offsets span the whole range
    assert tiles[:, 0].min() == 1040 - 512 and tiles[:, 0].max() == 1000
    assert tiles[:, 1].min() == 900 - 512 and tiles[:, 1].max() == 800


def test_random_tile_over_stays_in_window() -> None:
    rng = np.random.default_rng(1)
    window = (100, 200, 1300, 1000)
    for _ in range(200):  # box at the window corner: the tile is pushed back inside
        t = random_tile_over((90.0, 190.0, 130.0, 230.0), window, 512, rng)
        assert t == (100, 200, 612, 712)
    big = random_tile_over((0, 0, 4000, 3000), (0, 0, 4608, 3072), 512, rng)  # tile in box
    assert big[0] >= 0 and big[2] <= 4000 and big[1] >= 0 and big[3] <= 3000
    assert random_tile_over((10, 10, 20, 20), (0, 0, 300, 200), 512, rng) == (0, 0, 300, 200)


@pytest.mark.parametrize("op", ["rot1", "rot2", "rot3", "hflip", "vflip"])
def test_box_transforms_match_the_image_transforms(op: str) -> None:
    h, w = 60, 90
    box = np.array([[10.0, 5.0, 30.0, 45.0]])
    img = np.zeros((h, w), dtype=bool)
    img[5:45, 10:30] = True
    if op.startswith("rot"):
        k = int(op[-1])
        out, moved = np.rot90(img, k), rot90_boxes(box, k, w, h)
    elif op == "hflip":
        out, moved = img[:, ::-1], hflip_boxes(box, w)
    else:
        out, moved = img[::-1], vflip_boxes(box, h)
    ys, xs = np.nonzero(out)
    np.testing.assert_allclose(moved, [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]])


def _photo(path: Path, scratches: list[tuple[int, int, int, int]]) -> Path:
    """A 1280x960 grey photo with a white part (320..960 x 240..800) and dark line scratches."""
    xx = np.mgrid[0:960, 0:1280][1]
    img = np.repeat((120 - 10 * ((xx / 1280 - 0.5) ** 2))[..., None], 3, axis=2)
    img[240:800, 320:960] = 225
    for x0, y0, x1, y1 in scratches:
        n = max(x1 - x0, y1 - y0)
        t = np.linspace(0, 1, 4 * n)
        img[(y0 + t * (y1 - y0 - 1)).astype(int), (x0 + t * (x1 - x0 - 1)).astype(int)] = 90
    Image.fromarray(img.astype(np.uint8)).save(path, quality=95)
    return path


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[ImageRecord]:
    root = tmp_path_factory.mktemp("tiles")
    boxes = [[(400, 300, 460, 380), (700, 600, 790, 640)], [(820, 500, 860, 700)], []]
    out = []
    for i, bs in enumerate(boxes):
        path = _photo(root / f"white_{i}.jpg", bs)
        recs = tuple(
            BoxRecord(10 * i + j, i, 1, (b[0], b[1], b[2] - b[0], b[3] - b[1]))
            for j, b in enumerate(bs)
        )
        out.append(ImageRecord(i, path.name, 1280, 960, recs, {"colour": "white"}, path))
    return out


def _cfg(**kw: object) -> TileConfig:
    base = {"tile_size": 256, "samples_per_epoch": 40, "context": 64, "localize": {"margin": 32}}
    return TileConfig.model_validate({**base, **kw})


def test_items_are_torchvision_tensors_and_seeded(records: list[ImageRecord]) -> None:
    ds = TileDataset(records, cfg=_cfg())
    assert len(ds) == 40 and ds.synthesis  # 2 scratched photos < 200: synthesis on by default
    image, target, meta = ds[0]
    assert image.shape == (3, 256, 256) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape[1] == 4
    assert target["labels"].dtype == torch.int64 and set(meta) == {"image_id", "tile", "scale"}
    again = TileDataset(records, cfg=_cfg())[0]
    assert torch.equal(image, again[0]) and torch.equal(target["boxes"], again[1]["boxes"])
    ds.set_epoch(1)
    assert ds.sample(0).tile != TileDataset(records, cfg=_cfg()).sample(0).tile


def test_positive_tiles_hold_their_box_and_follow_the_edge_rule(records) -> None:
    cfg = _cfg(
        positive_fraction=1.0,
        hflip=False,
        vflip=False,
        rot90=False,
        synthesis={"enabled": False},
        samples_per_epoch=60,
    )
    ds = TileDataset(records, cfg=cfg)
    for i in range(len(ds)):
        s = ds.sample(i)
        assert s.record in (0, 1) and len(s.boxes) >= 1  # only scratched photos
        assert (s.boxes >= 0).all() and (s.boxes <= 256).all()
        expected = boxes_into_tile(xyxy(records[s.record]), s.tile, 0.25, 2.0)
        np.testing.assert_allclose(s.boxes, expected.boxes)
        win = ds.window(s.record)
        x0, y0 = s.tile[0] - win.window[0], s.tile[1] - win.window[1]
        np.testing.assert_array_equal(s.image, win.pixels[y0 : y0 + 256, x0 : x0 + 256])


def test_background_tiles_lie_over_the_part(records) -> None:
    ds = TileDataset(records, cfg=_cfg(positive_fraction=0.0, synthesis={"enabled": False}))
    records_seen = set()
    for i in range(len(ds)):
        s = ds.sample(i)
        records_seen.add(s.record)
        x0, y0, x1, y1 = s.tile
        assert x0 < 960 and x1 > 320 and y0 < 800 and y1 > 240  # overlaps the part
    assert records_seen == {0, 1, 2}  # clean photos too


def test_synthesis_pastes_inside_the_part_and_only_changes_pasted_boxes(records) -> None:
    cfg = _cfg(
        hflip=False,
        vflip=False,
        rot90=False,
        samples_per_epoch=30,
        synthesis={"probability": 1.0, "scale_range": (0.8, 1.0)},
    )
    ds = TileDataset(records, cfg=cfg)
    assert len(ds.bank()) == 3
    pasted = 0
    for i in range(len(ds)):
        s = ds.sample(i)
        win = ds.window(s.record)
        x0, y0 = s.tile[0] - win.window[0], s.tile[1] - win.window[1]
        before = win.pixels[y0 : y0 + 256, x0 : x0 + 256]
        changed = (s.image != before).any(axis=2)
        inside = np.zeros_like(changed)
        for bx0, by0, bx1, by1 in s.boxes[s.synthetic].astype(int):
            inside[by0:by1, bx0:bx1] = True
            assert win.part[y0 + by0 : y0 + by1, x0 + bx0 : x0 + bx1].all()
            pasted += 1
        assert not (changed & ~inside).any()
        assert len(s.labels) == len(s.boxes) and (s.labels == 1).all()
    assert pasted >= 10


def test_bad_input_is_named(records, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no records"):
        TileDataset([])
    with pytest.raises(ValueError, match="category ids"):
        TileDataset(records, labels={7: 1})
    lost = ImageRecord(9, "gone.jpg", 1280, 960, (), {}, None)
    with pytest.raises(ValueError, match=r"gone\.jpg"):
        TileDataset([lost], cfg=_cfg()).sample(0)


def test_real_sample_tiles_and_preview(sample: Path, tmp_path: Path) -> None:
    data = load_coco_records(sample / "annotations/train.json", sample / "train", only_present=True)
    cfg = TileConfig(samples_per_epoch=12, synthesis={"probability": 1.0})
    ds = TileDataset(data, cfg=cfg)
    n_pasted = 0
    for i in range(len(ds)):
        image, target, _ = ds[i]
        assert image.shape == (3, 1024, 1024)
        b = target["boxes"]
        assert ((b[:, 2:] > b[:, :2]).all()) and (b >= 0).all() and (b <= 1024).all()
        n_pasted += int(ds.sample(i).synthetic.sum())
    assert n_pasted > 0
    out = preview_synthesis(ds, tmp_path / "synth.png", rows=3)
    assert out.is_file() and out.stat().st_size > 10_000


def test_set_epoch_reaches_persistent_workers(records: list[ImageRecord]) -> None:
    ds = TileDataset(records, cfg=_cfg(samples_per_epoch=2, synthesis={"enabled": False}))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=None, num_workers=1, persistent_workers=True
    )
    first = [tuple(meta["tile"]) for _, _, meta in loader]
    assert first == [ds.sample(i).tile for i in range(2)]
    ds.set_epoch(5)
    second = [tuple(meta["tile"]) for _, _, meta in loader]  # same worker process
    assert second == [ds.sample(i).tile for i in range(2)] and second != first


def test_box_outside_the_found_part_still_gets_positive_tiles(tmp_path: Path) -> None:
    path = _photo(tmp_path / "white_far.jpg", [(100, 100, 140, 130)])  # on the background
    rec = ImageRecord(5, path.name, 1280, 960, (BoxRecord(1, 5, 1, (100, 100, 40, 30)),), {}, path)
    cfg = _cfg(positive_fraction=1.0, samples_per_epoch=10, synthesis={"enabled": False})
    ds = TileDataset([rec], cfg=cfg)
    assert ds.window(0).window[0] <= 100 - 64 and ds.window(0).window[1] <= 100 - 64
    for i in range(len(ds)):
        assert len(ds.sample(i).boxes) == 1


def test_color_jitter_is_brightness_contrast_saturation() -> None:
    x = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    b, c, s = np.random.default_rng(3).uniform(0.8, 1.2, size=3)
    ref = x * b
    ref = (ref - ref.mean()) * c + ref.mean()
    grey = ref.mean(0, keepdim=True)
    ref = ((ref - grey) * s + grey).clamp(0, 1)
    out = color_jitter(x.clone(), 0.2, np.random.default_rng(3))
    assert (out - ref).abs().max() < 0.01  # the contrast mean is taken on a 1/4 subsample
    assert torch.allclose(color_jitter(x.clone(), 0.0, np.random.default_rng(3)), x, atol=1e-6)


def test_structure_points_find_a_groove_on_the_part() -> None:
    img = np.full((256, 320, 3), 200, dtype=np.uint8)
    img[:, 160:166] = 90  # a dark vertical groove 6 px wide
    part = np.ones((256, 320), dtype=bool)
    pts = structure_points(img, part, top=0.1)
    assert len(pts) > 0 and pts.dtype == np.int64
    assert set(np.unique(pts[:, 0])) <= {148, 156, 164, 172}  # cell centres beside the groove
    assert (pts[:, 1] > 8).all() and (pts[:, 1] < 248).all()  # border cells are skipped
    off = part.copy()
    off[:, 120:200] = False  # the groove is off the part: structure is flat elsewhere
    assert not np.isin(structure_points(img, off, top=0.1)[:, 0], [148, 156, 164, 172]).any()
    assert structure_points(img, np.zeros_like(part)).shape == (0, 2)
    assert structure_points(img[:16, :16], part[:16, :16]).shape == (0, 2)


def test_hard_background_tiles_are_centred_near_structure(records) -> None:
    cfg = _cfg(positive_fraction=0.0, hard_background=1.0, hflip=False, vflip=False,
               rot90=False, synthesis={"enabled": False}, samples_per_epoch=30)
    ds = TileDataset(records, cfg=cfg)
    assert len(ds.window(2).hard) == 0  # the clean photo's part is flat: plain background
    checked = 0
    for i in range(len(ds)):
        s = ds.sample(i)
        win = ds.window(s.record)
        pts = win.hard + np.array(win.window[:2])
        inside = ((pts[:, 0] >= s.tile[0]) & (pts[:, 0] < s.tile[2])
                  & (pts[:, 1] >= s.tile[1]) & (pts[:, 1] < s.tile[3]))
        assert inside.any() or not len(pts), (i, s.tile)
        checked += bool(len(pts))
    assert checked >= 10
    # the part edge and the drawn scratches are this photo's strongest structure
    win = ds.window(0)
    x, y = (win.hard + np.array(win.window[:2])).T
    near_edge = (np.minimum(abs(x - 320), abs(x - 960)) < 48) | (
        np.minimum(abs(y - 240), abs(y - 800)) < 48)
    near_scratch = ((x > 380) & (x < 480) & (y > 280) & (y < 400)) | (
        (x > 680) & (x < 810) & (y > 580) & (y < 660))
    assert (near_edge | near_scratch).all()


def test_colour_balance_gives_each_colour_the_same_share(records) -> None:
    red = records[1].path.with_name("red_1.jpg")
    red.write_bytes(records[1].path.read_bytes())
    mixed = [*records, ImageRecord(9, red.name, 1280, 960, tuple(
        BoxRecord(90 + k, 9, 1, b.bbox) for k, b in enumerate(records[1].boxes)), {}, red)]
    counts = {}
    for balance in (False, True):
        cfg = _cfg(positive_fraction=0.5, colour_balance=balance, synthesis={"enabled": False},
                   samples_per_epoch=400)
        ds = TileDataset(mixed, cfg=cfg)
        counts[balance] = sum(ds._draw_tile(np.random.default_rng(i))[0] == 3 for i in range(400))
    # white: 3 photos, 3 boxes; red: 1 photo, 1 box -> unbalanced 1/4, balanced 1/2
    assert 70 <= counts[False] <= 130 and 170 <= counts[True] <= 230, counts


def test_mined_points_keep_false_boxes_only(records) -> None:
    dets = [
        {"image_id": 0, "bbox": [410, 310, 40, 60], "score": 0.9},  # centre in a true box
        {"image_id": 0, "bbox": [600, 400, 20, 20], "score": 0.8},  # false: kept
        {"image_id": 2, "bbox": [500, 500, 10, 30], "score": 0.25},  # clean photo: kept
        {"image_id": 2, "bbox": [500, 500, 10, 30], "score": 0.1},  # below min_score
        {"image_id": 7, "bbox": [1, 1, 5, 5], "score": 0.9},  # not a training photo
    ]
    assert mined_points(records, dets, 0.2) == [(0, 610.0, 410.0), (2, 505.0, 515.0)]
    assert mined_points(records, dets, 0.85) == []


def test_hard_negative_tiles_are_centred_on_mined_boxes(records, tmp_path: Path) -> None:
    mined = tmp_path / "mined.bbox.json"
    mined.write_text(json.dumps([{"image_id": 2, "bbox": [500, 500, 10, 30], "score": 0.5},
                                 {"image_id": 0, "bbox": [600, 400, 20, 20], "score": 0.4}]))
    cfg = _cfg(positive_fraction=0.0, hard_background=1.0, hard_negatives=str(mined),
               synthesis={"enabled": False}, samples_per_epoch=20)
    ds = TileDataset(records, cfg=cfg)
    assert len(ds.window(0).hard) == 0  # structure points are not computed then
    hits = {0: 0, 2: 0}
    for i in range(len(ds)):
        s = ds.sample(i)
        x, y = {0: (610, 410), 2: (505, 515)}[s.record]
        assert s.tile[0] <= x < s.tile[2] and s.tile[1] <= y < s.tile[3], (i, s.tile)
        hits[s.record] += 1
    assert min(hits.values()) >= 4
    for bad, match in (("{", "cannot read as COCO results"), ('{"a": 1}', "expected a list"),
                       ('[{"image_id": 1, "bbox": [1, 2]}]', "detection 0 needs image_id")):
        mined.write_text(bad)
        with pytest.raises(ValueError, match=match):
            TileDataset(records, cfg=cfg)
