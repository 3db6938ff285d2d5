"""Training photos in the polarity the predictor shows them: red parts converted with
``red_polarity`` (tiles and whole photos), white ones untouched, synthesis sees white."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchdet.config import ConfigError
from scratchdet.data.records import BoxRecord, ImageRecord
from scratchdet.data.tiles import TileConfig, TileDataset
from scratchdet.data.windows import load_window, part_colour, whole_photo_is_red
from scratchdet.geometry.localize import LocalizeConfig
from scratchdet.imaging import white_polarity_array
from scratchdet.training.config import TrainConfig
from scratchdet.training.datamodule import load_photo, tile_config

RED, WHITE = (190, 35, 30), (225, 225, 225)
SCRATCH = (40, 60, 140, 68)  # x0, y0, x1, y1 of a dark line on the white photo


def _photo(path: Path, paint: tuple[int, int, int], scratch: bool = False) -> ImageRecord:
    """A 640x480 grey photo with a painted part (160..480 x 120..400), PNG (lossless)."""
    img = np.full((480, 640, 3), 110, dtype=np.uint8)
    img[120:400, 160:480] = paint
    boxes: tuple[BoxRecord, ...] = ()
    if scratch:
        x0, y0, x1, y1 = SCRATCH
        img[120 + y0 + 2 : 120 + y1 - 2, 160 + x0 + 2 : 160 + x1 - 2] = 90
        boxes = (BoxRecord(1, 0, 1, (160 + x0, 120 + y0, x1 - x0, y1 - y0)),)
    Image.fromarray(img).save(path)
    colour = "red" if paint == RED else "white"
    return ImageRecord(len(path.stem), path.name, 640, 480, boxes, {"colour": colour}, path)


@pytest.fixture()
def photos(tmp_path: Path) -> dict[str, ImageRecord]:
    return {"red": _photo(tmp_path / "red_a.png", RED),
            "white": _photo(tmp_path / "white_a.png", WHITE, scratch=True)}


def _raw(rec: ImageRecord, window: tuple[int, int, int, int]) -> np.ndarray:
    assert rec.path is not None
    with Image.open(rec.path) as im:
        return np.asarray(im.convert("RGB").crop(window))


@pytest.mark.parametrize("on", [True, False])
def test_red_window_is_converted_only_with_the_option(photos, on: bool) -> None:
    lcfg = LocalizeConfig(margin=16)
    red = load_window(photos["red"], 256, 32, lcfg, red_polarity=on)
    white = load_window(photos["white"], 256, 32, lcfg, red_polarity=on)
    raw_red = _raw(photos["red"], red.window)
    assert red.shown_white is on and not white.shown_white
    expected = white_polarity_array(raw_red) if on else raw_red
    np.testing.assert_array_equal(red.pixels, expected)
    np.testing.assert_array_equal(white.pixels, _raw(photos["white"], white.window))
    if on:  # red paint (green 35) is light grey now, the background (110) mid grey
        y, x = 260 - red.window[1], 320 - red.window[0]
        assert tuple(red.pixels[y, x]) == (220, 220, 220)
    assert part_colour("red_a.png", red) == ("white" if on else "red")
    assert part_colour("white_a.png", white) == "white"


def test_tile_dataset_reads_converted_red_windows(photos) -> None:
    cfg = TileConfig(tile_size=128, context=32, localize={"margin": 16}, red_polarity=True,
                     synthesis={"enabled": False})
    ds = TileDataset([photos["white"], photos["red"]], cfg=cfg)
    assert not ds.window(0).shown_white and ds.window(1).shown_white
    for i in range(20):
        s = ds.sample(i)
        assert (s.image[..., 0] == s.image[..., 1]).all() or s.record == 0


def test_synthesis_treats_a_converted_red_part_as_white(photos) -> None:
    """A white part's dark scratch pasted on a converted red part stays dark (no inversion);
    without the option it is pasted inverted (lighter) on the red paint."""
    lum = []
    for on in (True, False):
        cfg = TileConfig(tile_size=128, context=32, localize={"margin": 16}, red_polarity=on,
                         positive_fraction=0.0, hflip=False, vflip=False, rot90=False,
                         jitter=0.0, samples_per_epoch=60,
                         synthesis={"probability": 1.0, "scale_range": (0.5, 0.6),
                                    "grey_probability": 0.0})
        ds = TileDataset([photos["white"], photos["red"]], cfg=cfg)
        assert [p.colour for p in ds.bank()] == ["white"]
        diffs = []
        for i in range(len(ds)):
            s = ds.sample(i)
            if s.record != 1 or not s.synthetic.any():
                continue
            win = ds.window(1)
            x0, y0 = s.tile[0] - win.window[0], s.tile[1] - win.window[1]
            before = win.pixels[y0 : y0 + 128, x0 : x0 + 128].astype(int).sum(axis=2)
            after = s.image.astype(int).sum(axis=2)
            for bx0, by0, bx1, by1 in s.boxes[s.synthetic].astype(int):
                diffs.append((after - before)[by0:by1, bx0:bx1].sum())
        assert len(diffs) >= 3
        lum.append(np.array(diffs))
    assert (lum[0] < 0).all()  # converted red = white: the pasted scratch darkens
    assert (lum[1] > 0).all()  # red as it is: the white scratch is inverted, lighter


def test_whole_photo_path_converts_red_photos_only(photos) -> None:
    assert whole_photo_is_red(photos["red"].path) and not whole_photo_is_red(photos["white"].path)
    red_on = load_photo(photos["red"], (320, 240), red_polarity=True)
    red_off = load_photo(photos["red"], (320, 240))
    assert red_off[0, 130, 160] > 0.7 and red_on[0, 130, 160] == pytest.approx(220 / 255, abs=0.02)
    assert (red_on[0] == red_on[1]).all() and (red_on[1] == red_on[2]).all()
    white_on = load_photo(photos["white"], (320, 240), red_polarity=True)
    assert (white_on == load_photo(photos["white"], (320, 240))).all()


def test_training_config_sets_the_tile_option(tmp_path: Path) -> None:
    cfg = TrainConfig(input_mode="tiles", red_polarity=True)
    assert tile_config(cfg).red_polarity and not tile_config(TrainConfig()).red_polarity
    with pytest.raises(ConfigError, match="top-level red_polarity"):
        tile_config(TrainConfig(tile_options={"red_polarity": True}))
