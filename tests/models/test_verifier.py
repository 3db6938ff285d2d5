"""Crop features and the clean-bank distance."""

from __future__ import annotations

import numpy as np
import torch

from scratchdet.models.verifier import PATCH_DIM, POOLED_DIM, CleanBankDistance, CropFeatures
from scratchdet.training.rescore import core_patches


def test_crop_features_shapes_and_determinism() -> None:
    model = CropFeatures(pretrained=False)
    model.train()  # stays in inference mode
    assert not model.training
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3),
                                                               dtype=np.uint8))
    pooled, patches = model(crops)
    assert pooled.shape == (3, POOLED_DIM) and patches.shape == (3, 100, PATCH_DIM)
    again, _ = model(crops[:1])
    torch.testing.assert_close(again, pooled[:1], rtol=1e-4, atol=1e-4)


def test_bank_distance_is_the_core_nearest_neighbour_maximum() -> None:
    rng = np.random.default_rng(1)
    patches = rng.normal(size=(2, 36, 5)).astype(np.float32)  # 6 x 6 grids
    bank = rng.normal(size=(50, 5)).astype(np.float32)
    got = CleanBankDistance(torch.from_numpy(bank), core=2)(torch.from_numpy(patches)).numpy()
    core = core_patches(patches, core=2)  # rows 2-3, columns 2-3 of each grid
    np.testing.assert_array_equal(core[0, 0], patches[0, 2 * 6 + 2])
    want = np.linalg.norm(core[:, :, None, :] - bank[None, None], axis=3).min(2).max(1)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # a crop whose core patches are all in the bank is at distance 0
    inside = patches.copy()
    bank_with = np.concatenate([bank, core[1]])
    zero = CleanBankDistance(torch.from_numpy(bank_with), core=2)(torch.from_numpy(inside))
    assert float(zero[1]) < 1e-2 and float(zero[0]) > 0.1
