"""TrainConfig: the seed YAML, unknown keys, bad values, and the learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from scratchdet.config import ConfigError, load_config
from scratchdet.training.config import TrainConfig
from scratchdet.training.schedule import lr_at

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_seed_yaml_has_the_seed_values() -> None:
    cfg = load_config(TrainConfig, CONFIGS / "seed_cascade_x101.yaml")
    assert cfg.model == "cascade_rcnn_x101_32x4d_fpn"
    assert (cfg.lr, cfg.momentum, cfg.weight_decay) == (0.0025, 0.9, 1e-4)
    assert (cfg.warmup_iters, cfg.warmup_ratio, cfg.min_lr) == (500, 0.001, 1e-7)
    assert (cfg.epochs, cfg.batch_size, cfg.seed) == (30, 2, 111)
    assert cfg.resize == (1333, 800) and cfg.input_mode == "resize"
    assert cfg.hflip_p == 0.5 and cfg.photometric
    assert (cfg.brightness_delta, cfg.hue_delta) == (32, 18)
    assert cfg.contrast_range == cfg.saturation_range == (0.5, 1.5)
    assert (cfg.ssr_shift, cfg.ssr_scale, cfg.ssr_rotate, cfg.ssr_p) == (0.0625, 0.15, 15, 0.4)


def test_cpu_fast_yaml_loads_with_the_default_cpu_model() -> None:
    from scratchdet.models.factory import DEFAULT_CPU_MODEL

    cfg = load_config(TrainConfig, CONFIGS / "cpu_fast.yaml")
    assert cfg.model == DEFAULT_CPU_MODEL and cfg.accelerator == "cpu"
    # the recipe cross-validated on three seeds (docs/quality.md): EMA from step 1536 of 3072
    assert (cfg.ema_decay, cfg.ema_start_fraction, cfg.ema_start_step) == (0.998, 0.5, None)
    assert (cfg.epochs, cfg.tile_options["samples_per_epoch"], cfg.batch_size) == (48, 128, 2)


def test_nested_rule_is_validated_and_reaches_the_model_spec() -> None:
    from scratchdet.training.checkpoint import spec_for

    assert TrainConfig().nested == "keep"
    cfg = load_config(TrainConfig, CONFIGS / "cpu_fast.yaml")
    assert cfg.nested == "keep"  # stated in the file
    assert "\nnested: keep " in (CONFIGS / "cpu_fast.yaml").read_text()
    assert spec_for(cfg, ["scratch"], [1]).nested_rule == ("keep", 0.5, 0.5)
    other = load_config(TrainConfig, CONFIGS / "cpu_fast.yaml", ["nested=Suppress:0.7"])
    assert other.nested == "suppress:0.7"  # stored canonical
    assert spec_for(other, ["scratch"], [1]).nested == "suppress:0.7"
    assert load_config(TrainConfig, None, ["nested=keep"]).nested == "keep"
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, CONFIGS / "cpu_fast.yaml", ["nested=decay:2"])
    assert "cpu_fast.yaml + --set nested: invalid TrainConfig" in str(err.value)
    assert ("  nested: Value error, nested: expected MODE[:IOS[:DECAY]] with MODE one of keep, "
            "suppress, decay, union, wbf, 0 < IOS <= 1, 0 <= DECAY <= 1; got 'decay:2'"
            in str(err.value))


def test_unknown_key_is_rejected_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("epochz: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, path)
    assert str(path) in str(err.value)
    assert "unknown key 'epochz'; did you mean 'epochs'?" in str(err.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [("lr=-1", "lr"), ("hflip_p=2", "hflip_p"), ("input_mode=tile", "input_mode"),
     ("resize=[800,1333]", "resize"), ("max_steps=0", "max_steps"),
     ("loggers=[csv,neptune]", "loggers")],
)
def test_bad_value_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, None, [override])
    assert f"  {key}" in str(err.value)


def test_dotted_override_sets_one_nested_entry() -> None:
    cfg = load_config(TrainConfig, CONFIGS / "cpu_fast.yaml",
                      ["tile_options.hard_background=0.5", "tile_options.synthesis.copies=3"])
    assert cfg.tile_options["hard_background"] == 0.5
    assert cfg.tile_options["samples_per_epoch"] == 128  # the file's other entries stay
    assert cfg.tile_options["synthesis"] == {"copies": 3}
    with pytest.raises(ConfigError, match=r"'lr' is 0.01, not a mapping"):
        load_config(TrainConfig, CONFIGS / "cpu_fast.yaml", ["lr.value=1"])


def test_min_lr_above_lr_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"min_lr \(0.1\) must not exceed lr"):
        load_config(TrainConfig, None, ["min_lr=0.1", "lr=0.01"])


def test_data_paths_default_to_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRATCHDET_SAMPLE", "/somewhere")
    paths = TrainConfig(val_images=Path("/v")).data_paths()
    assert paths["train_annotations"] == Path("/somewhere/annotations/train.json")
    assert paths["train_images"] == Path("/somewhere/train")
    assert paths["val_images"] == Path("/v")


def test_lr_schedule_warmup_then_cosine() -> None:
    base, low = 0.0025, 1e-7
    table = {
        0: base * 0.001,  # warm-up starts at warmup_ratio x (cosine at 0 = base)
        250: (low + (base - low) * 0.5 * (1 + math.cos(math.pi * 250 / 10000)))
        * (1 - 0.5 * 0.999),
        500: low + (base - low) * 0.5 * (1 + math.cos(math.pi * 0.05)),
        5000: low + (base - low) * 0.5,
        10000: low,
    }
    for step, expected in table.items():
        assert lr_at(step, 10000, base, low, 500, 0.001) == pytest.approx(expected, rel=1e-9)


def test_cli_reports_a_bad_config_and_exits_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scratchdet.cli import app

    path = tmp_path / "c.yaml"
    path.write_text("model: lite0_fpn_fast\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(path), "--set", "batch_sise=4"])
    assert result.exit_code == 2
    assert "unknown key 'batch_sise'; did you mean 'batch_size'?" in result.output


def test_packaged_configs_load_from_any_folder(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from scratchdet.config import PACKAGED_CONFIGS, resolve_config

    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    for name in ("configs/cpu_fast.yaml", "cpu_fast.yaml"):
        assert resolve_config(name) == PACKAGED_CONFIGS / "cpu_fast.yaml"
        assert load_config(TrainConfig, name).model == "lite1_cascade_fast"
    own = tmp_path / "cpu_fast.yaml"  # a file of the user's own wins over the packaged one
    own.write_text("model: lite0_fcos\n")
    assert load_config(TrainConfig, "cpu_fast.yaml").model == "lite0_fcos"
    with pytest.raises(ConfigError, match=r"nothing\.yaml: config file not found"):
        load_config(TrainConfig, "configs/nothing.yaml")
