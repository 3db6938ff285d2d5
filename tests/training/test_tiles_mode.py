"""input_mode: tiles trains on native-resolution tiles and validates through the tiled
predictor on a whole (cropped, to stay fast) real photo."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchdet.config import ConfigError
from scratchdet.training.fit import fit

from .training_helpers import pick_box, tiny_config, write_crop, write_subset


def test_tiles_mode_trains_and_scores_a_whole_photo(sample: Path, tmp_path: Path) -> None:
    train = write_subset(sample, "train", ["white_train_scratch_4_img80.JPG"],
                         tmp_path / "train.json")
    crop = tmp_path / "crop"
    crop.mkdir()
    record = pick_box(sample, "white_train_scratch_4_img78.JPG", 1)
    write_crop(record, 1, 640, crop, copies=1)  # validation: a 640 px photo, tiled
    cfg = tiny_config(
        tmp_path, train, train_images=sample / "train", val_annotations=crop / "val.json",
        val_images=crop, input_mode="tiles", tile_size=256, tile_overlap=64,
        tile_options={"samples_per_epoch": 4, "synthesis": {"enabled": False}},
    )
    result = fit(cfg)
    assert result.global_step == 2
    assert "val/AP" in result.metrics and result.best_checkpoint is not None


def test_bad_tile_option_names_tile_options(synthetic: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic, input_mode="tiles", tile_options={"tile_sise": 3})
    with pytest.raises(ConfigError, match=r"tile_options: invalid TileConfig"):
        fit(cfg)
