"""crop_windows: square windows around boxes, against an exact table."""

from __future__ import annotations

import numpy as np
import pytest

from scratchdet.geometry.crops import CropSpec, crop_windows

SPEC = CropSpec(size=160, grow=1.5, pad=20, min_side=100, max_side=400)


def test_window_table() -> None:
    boxes = np.array([
        [500, 500, 540, 520],    # small: min_side 100 around the centre (520, 510)
        [1000, 1000, 1200, 1100],  # 1.5 * 200 + 20 = 320
        [0, 0, 2000, 30],        # long: capped at 400, centred at (1000, 15), shifted to y 0
        [4590, 3050, 4600, 3060],  # at the corner: shifted inside 4608 x 3072
    ])
    got = crop_windows(boxes, 4608, 3072, SPEC)
    np.testing.assert_array_equal(got, [
        [470, 460, 570, 560],
        [940, 890, 1260, 1210],
        [800, 0, 1200, 400],
        [4508, 2972, 4608, 3072],
    ])


def test_image_smaller_than_window() -> None:
    got = crop_windows(np.array([[10, 10, 20, 20]]), 60, 300, SPEC)
    np.testing.assert_array_equal(got, [[0, 0, 60, 100]])


def test_empty_and_bad_input() -> None:
    assert crop_windows(np.zeros((0, 4)), 100, 100, SPEC).shape == (0, 4)
    with pytest.raises(ValueError, match="image size"):
        crop_windows(np.zeros((1, 4)), 0, 100, SPEC)
    with pytest.raises(ValueError, match="min_side"):
        CropSpec(min_side=500, max_side=100)
