"""Test-time flips: parsing, box mapping, fusion tables and the predictor with flips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchdet.geometry.localize import LocalizeConfig
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.inference.tta import (
    flip_array,
    fuse_outputs,
    fuse_passes,
    parse_tta,
    unflip_boxes,
)
from scratchdet.structures import Detections

from .test_predictor import DarkPixels, photo  # noqa: F401  (a fixture)


def test_parse_tta() -> None:
    assert parse_tta("h,v") == ("h", "v")
    assert parse_tta(" HV , h ") == ("hv", "h")
    assert parse_tta("") == () and parse_tta("none") == ()
    with pytest.raises(ValueError, match=r"unknown flip 'x'.*h, v, hv"):
        parse_tta("h,x")
    with pytest.raises(ValueError, match="repeated"):
        parse_tta("v,v")


@pytest.mark.parametrize(("flip", "expected"), [
    ("h", [70, 5, 90, 25]),
    ("v", [10, 55, 30, 75]),
    ("hv", [70, 55, 90, 75]),
])
def test_unflip_boxes_table(flip: str, expected: list[float]) -> None:
    box = np.array([[10.0, 5.0, 30.0, 25.0]])
    np.testing.assert_array_equal(unflip_boxes(box, 100, 80, flip), [expected])
    # flipping twice is the identity
    np.testing.assert_array_equal(unflip_boxes(unflip_boxes(box, 100, 80, flip), 100, 80, flip),
                                  box)
    assert unflip_boxes(np.zeros((0, 4)), 100, 80, flip).shape == (0, 4)


@pytest.mark.parametrize("flip", ["h", "v", "hv"])
def test_flip_array_and_unflip_boxes_agree(flip: str) -> None:
    image = np.full((80, 100, 3), 255, dtype=np.uint8)
    image[5:25, 10:30] = 0  # dark square at x 10..30, y 5..25
    flipped = flip_array(image, flip)
    assert flipped.flags.c_contiguous and flipped.shape == image.shape
    found = DarkPixels()([flipped])[0].boxes
    np.testing.assert_array_equal(unflip_boxes(found, 100, 80, flip), [[10, 5, 30, 25]])


def test_fuse_passes_table() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], dtype=float)
    scores = np.array([0.9, 0.6, 0.3])
    labels = np.array([1, 1, 1])
    passes = np.array([0, 1, 1])
    b, s, lab = fuse_passes(boxes, scores, labels, passes, n_passes=3)
    # A (pass 0) and A' (pass 1) overlap at IoU 8/12 >= 0.55: weighted mean, (0.9 + 0.6) / 3
    np.testing.assert_allclose(b, [[0.8, 0, 10.8, 10], [50, 50, 60, 60]])
    np.testing.assert_allclose(s, [0.5, 0.1])
    assert lab.tolist() == [1, 1]


def test_fuse_passes_keeps_same_pass_and_other_class_apart() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], dtype=float)
    scores = np.array([0.8, 0.7, 0.6])
    b, s, lab = fuse_passes(boxes, scores, np.array([1, 1, 2]), np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(s, [0.4, 0.35, 0.3])
    assert lab.tolist() == [1, 1, 2]
    np.testing.assert_allclose(b, boxes)
    empty = fuse_passes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64),
                        np.zeros(0, dtype=np.int64), 2)
    assert empty[0].shape == (0, 4) and len(empty[1]) == 0 and len(empty[2]) == 0
    with pytest.raises(ValueError, match=r"pass indices must be in \[0, 2\), got 0..2"):
        fuse_passes(boxes, scores, np.array([1, 1, 1]), np.array([0, 2, 1]), 2)


def test_fuse_outputs_maps_back_and_checks_lengths() -> None:
    out = Detections.from_arrays([[70.0, 5, 90, 25]], [0.8], [1])
    same = Detections.from_arrays([[10.0, 5, 30, 25]], [0.4], [1])
    fused = fuse_outputs([same, out], ["", "h"], 100, 80)
    np.testing.assert_allclose(fused.boxes, [[10, 5, 30, 25]])
    np.testing.assert_allclose(fused.scores, [0.6])
    assert fused.labels.dtype == np.int64 and fused.boxes.dtype == np.float32
    with pytest.raises(ValueError, match="2 outputs for 1 flips"):
        fuse_outputs([same, out], [""], 100, 80)


class LeftHalfOnly(DarkPixels):
    """Fake detector that only sees dark pixels in the left half of its input."""

    def find(self, img: np.ndarray) -> Detections:
        img = img.copy()
        img[:, img.shape[1] // 2:] = 255
        return super().find(img)


def test_predictor_with_flips(photo: Path) -> None:  # noqa: F811
    plain = TiledPredictor(DarkPixels(), max_single=2560, localize=LocalizeConfig(margin=64))
    model = DarkPixels()
    flipped = TiledPredictor(model, max_single=2560, localize=LocalizeConfig(margin=64),
                             tta=("h", "v", "hv"))
    a, b = plain.predict(photo).detections, flipped.predict(photo).detections
    np.testing.assert_allclose(b.boxes, a.boxes)
    np.testing.assert_allclose(b.scores, [0.9], rtol=1e-6)
    assert model.calls == [1, 1, 1, 1]  # one input, four passes


def test_box_seen_by_one_pass_of_two_keeps_half_its_score(tmp_path: Path) -> None:
    img = np.full((1200, 1600, 3), 120, dtype=np.uint8)
    img[360:840, 480:1120] = 225
    img[598:603, 900:1000] = 20  # in the right half of the part region only
    Image.fromarray(img).save(tmp_path / "right.png")
    predictor = TiledPredictor(LeftHalfOnly(), max_single=2560,
                               localize=LocalizeConfig(margin=64), tta=("h",))
    pred = predictor.predict(tmp_path / "right.png")
    x0, _, x1, _ = pred.region.box
    assert (x0 + x1) / 2 < 900
    np.testing.assert_allclose(pred.detections.boxes, [[900, 598, 1000, 603]])
    np.testing.assert_allclose(pred.detections.scores, [0.45], rtol=1e-6)
