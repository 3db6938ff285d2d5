"""TiledPredictor end to end with a fake detector on a synthetic photo (no torch); the
predictor ``build_predictor`` makes of a model's spec (its nested-box rule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchdet.artifact import ModelSpec
from scratchdet.geometry.localize import LocalizeConfig
from scratchdet.geometry.nested import KEEP
from scratchdet.geometry.tiling import tile_grid
from scratchdet.inference.load import LoadedModel, build_predictor
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.structures import Detections


class DarkPixels:
    """Fake detector: one box around the dark pixels of each input (score 0.9, label 1)."""

    def __init__(self, threshold: float = 0.3 * 255) -> None:
        self.calls: list[int] = []
        self.threshold = threshold

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        self.calls.append(len(images))
        out = []
        for img in images:
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
            out.append(self.find(img))
        return out

    def find(self, img: np.ndarray) -> Detections:
        ys, xs = np.nonzero(img.mean(2) < self.threshold)
        if not len(xs):
            return Detections.empty()
        return Detections.from_arrays([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]],
                                      [0.9], [1])


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """1600x1200 grey photo, white part at 480..1120 x 360..840, dark scratch 700..900 x 600."""
    img = np.full((1200, 1600, 3), 120, dtype=np.uint8)
    img[360:840, 480:1120] = 225
    img[598:603, 700:900] = 20
    path = tmp_path / "white_photo.png"
    Image.fromarray(img).save(path)
    return path


def test_scratch_across_tile_edges_is_found_once_in_photo_pixels(photo: Path) -> None:
    model = DarkPixels()
    pred = TiledPredictor(
        model, tile_size=256, min_overlap=64, batch_size=3, localize=LocalizeConfig(margin=64)
    ).predict(photo)
    assert not pred.region.fallback
    x0, y0, x1, y1 = pred.region.box
    assert x0 <= 480 and y0 <= 360 and x1 >= 1120 and y1 >= 840
    assert len(pred.tiles) < len(tile_grid(1600, 1200, 256, 64))  # region tiles < 48
    det = pred.detections
    assert isinstance(det, Detections)
    # the 200 px scratch is longer than the 64 px overlap: cut pieces fused into one box
    np.testing.assert_allclose(det.boxes, [[700, 598, 900, 603]])
    assert det.labels.tolist() == [1] and det.scores.dtype == np.float32
    assert det.boxes.dtype == np.float32 and det.labels.dtype == np.int64
    assert set(pred.timings) == {"decode", "localise", "model", "merge", "total"}
    assert model.calls[0] == 3 and sum(model.calls[: len(model.calls) // 2 + 1]) >= 3


def test_whole_photo_mode_and_bad_input(photo: Path, tmp_path: Path) -> None:
    pred = TiledPredictor(DarkPixels(), tile_size=512, min_overlap=128, whole_photo=True)
    out = pred.predict(Image.open(photo))
    assert out.region.box == (0, 0, 1600, 1200) and len(out.tiles) == 12
    np.testing.assert_allclose(out.detections.boxes, [[700, 598, 900, 603]])
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    with pytest.raises(ValueError, match=r"bad\.jpg"):
        pred.predict(bad)
    with pytest.raises(ValueError, match="batch_size"):
        TiledPredictor(DarkPixels(), batch_size=0)


def test_red_part_is_shown_to_the_model_as_a_white_one(tmp_path: Path) -> None:
    """A light scratch on red paint: unseen by a dark-line detector, found once the part is
    shown in the white parts' polarity; a white part is never transformed."""
    img = np.full((1200, 1600, 3), 120, dtype=np.uint8)
    img[360:840, 480:1120] = (190, 50, 50)  # red paint
    img[598:603, 700:900] = (235, 225, 225)  # a bare, light scratch
    red = tmp_path / "red_photo.png"
    Image.fromarray(img).save(red)
    plain = TiledPredictor(DarkPixels(), max_single=4096).predict(red)
    assert not plain.red_as_white
    assert plain.detections.boxes.shape[0] == 0 or plain.detections.boxes[0, 2] - \
        plain.detections.boxes[0, 0] > 300  # at best the dark background, not the scratch
    got = TiledPredictor(DarkPixels(), max_single=4096, red_polarity=True).predict(red)
    assert got.red_as_white
    np.testing.assert_allclose(got.detections.boxes, [[700, 598, 900, 603]])
    white = np.full((1200, 1600, 3), 120, dtype=np.uint8)
    white[360:840, 480:1120] = 225
    white[598:603, 700:900] = 20
    path = tmp_path / "white_photo.png"
    Image.fromarray(white).save(path)
    same = TiledPredictor(DarkPixels(), max_single=4096, red_polarity=True).predict(path)
    assert not same.red_as_white
    np.testing.assert_allclose(same.detections.boxes, [[700, 598, 900, 603]])


class LongBoxAndFragment:
    """Fake detector: in each input, a long box (0.9), a fragment inside it (0.6) and a box
    apart (0.7), in the input's pixels."""

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        boxes = [[10, 10, 210, 30], [50, 12, 90, 28], [300, 200, 340, 240]]
        return [Detections.from_arrays(boxes, [0.9, 0.6, 0.7], [1, 1, 1]) for _ in images]


def _fake_model(nested: str | None = None) -> LoadedModel:
    extra = {} if nested is None else {"nested": nested}
    spec = ModelSpec("fake", ("scratch",), (1,), tile_size=512, tile_overlap=128, **extra)
    return LoadedModel(LongBoxAndFragment(), spec, "fake")


def test_build_predictor_applies_the_spec_nested_rule(photo: Path) -> None:
    def scores(model: LoadedModel, **kwargs: object) -> list[float]:
        got = build_predictor(model, **kwargs).predict(photo).detections
        assert got.scores.tolist() == sorted(got.scores.tolist(), reverse=True)
        return got.scores.tolist()

    # one input (the part region): the fragment keeps its box; with decay its score halves
    pred = build_predictor(_fake_model("decay:0.5:0.5")).predict(photo)
    assert len(pred.tiles) == 1
    x0, y0 = pred.tiles[0][:2]
    np.testing.assert_allclose(pred.detections.boxes[2], [x0 + 50, y0 + 12, x0 + 90, y0 + 28])
    assert scores(_fake_model("decay:0.5:0.5")) == pytest.approx([0.9, 0.7, 0.3])
    assert scores(_fake_model("decay:0.5:0.2")) == pytest.approx([0.9, 0.7, 0.12])
    # the caller overrides the model's rule; keep (the default): the boxes as merged
    assert scores(_fake_model("decay:0.5:0.5"), nested=KEEP) == pytest.approx([0.9, 0.7, 0.6])
    assert scores(_fake_model()) == pytest.approx([0.9, 0.7, 0.6])
    assert scores(_fake_model("keep"), nested=("suppress", 0.5, 0.5)) == pytest.approx([0.9, 0.7])
