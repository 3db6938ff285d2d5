"""fit(): a 2-step run writes checkpoints and model.pt; resume continues the global step;
load_torch_model rebuilds the detector from a checkpoint alone (its spec, no Lightning)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from scratchdet.artifact import ArtifactError
from scratchdet.config import ConfigError
from scratchdet.inference.torch_runtime import load_torch_model
from scratchdet.models.backbones import Lite0Backbone
from scratchdet.training.fit import fit

from .training_helpers import tiny_config


def test_two_steps_write_checkpoints_and_resume_continues(synthetic: Path, tmp_path: Path) -> None:
    first = fit(tiny_config(tmp_path, synthetic, run_name="a"))
    assert first.global_step == 2  # 4 photos, batch 2, 1 epoch
    ckpts = sorted(p.name for p in (first.run_dir / "checkpoints").iterdir())
    assert ckpts == ["best.ckpt", "epoch000.ckpt", "last.ckpt"]
    assert first.best_checkpoint == first.run_dir / "checkpoints" / "best.ckpt"
    summary = json.loads((first.run_dir / "metrics.json").read_text())
    assert summary["global_step"] == 2 and "val/AP" in summary["metrics"]
    csv = first.run_dir / "logs" / "csv" / "version_0" / "metrics.csv"
    assert "val/AP50" in csv.read_text()
    assert (first.run_dir / "config.yaml").is_file()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = fit(tiny_config(tmp_path, synthetic, run_name=None, epochs=2,
                                  resume=first.last_checkpoint))
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]
    assert resumed.global_step == 4 and resumed.run_dir == first.run_dir
    assert (resumed.run_dir / "checkpoints" / "epoch001.ckpt").is_file()
    assert torch.load(resumed.last_checkpoint, weights_only=True)["epoch"] == 1


def test_checkpoint_alone_rebuilds_the_detector(synthetic: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    lightning_log = logging.getLogger("lightning.pytorch")  # it does not propagate to root
    lightning_log.addHandler(caplog.handler)
    try:
        result = fit(tiny_config(tmp_path, synthetic))
    finally:
        lightning_log.removeHandler(caplog.handler)
    printed = caplog.text
    assert "model lite0_fpn_fast: " in printed and " M parameters (" in printed
    for noise in ("Tip:", "litlogger", "Total FLOPs", "LeafSpec"):  # adverts, empty lines
        assert noise not in printed, noise
    assert result.model_path == result.run_dir / "model.pt"
    image = torch.rand(3, 64, 96)
    outs = []
    for path in (result.best_checkpoint, result.model_path):
        model, spec = load_torch_model(path)
        assert not model.training and spec.class_names == ("scratch",)
        assert spec.preset == "lite0_fpn_fast" and spec.category_ids == (1,)
        assert spec.recipe["epochs"] == 1 and spec.recipe["model"] == "lite0_fpn_fast"
        with torch.no_grad():
            outs.append(model([image])[0])
    assert torch.equal(outs[0]["boxes"], outs[1]["boxes"])
    assert not list(result.run_dir.glob("*.part"))  # atomic write left no temp file

    code = (
        "import sys; from scratchdet.inference.load import load_model; "
        f"load_model({str(result.model_path)!r}); print('lightning' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_not_a_checkpoint_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ArtifactError, match=r"x\.pt: no 'scratchdet' entry"):
        load_torch_model(path)


def test_bad_data_model_or_logger_are_config_errors(synthetic: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="none of the photos listed in"):
        fit(tiny_config(tmp_path, synthetic, train_images=empty))
    with pytest.raises(ConfigError, match=r"unknown model 'lite0_fpn_fats'.*did you mean"):
        fit(tiny_config(tmp_path, synthetic, model="lite0_fpn_fats"))
    with pytest.raises(ConfigError, match="loggers: 'wandb' asked for but not installed"):
        fit(tiny_config(tmp_path, synthetic, loggers=["wandb"]))


def test_stop_inside_an_epoch_keeps_a_last_checkpoint(synthetic: Path, tmp_path: Path) -> None:
    result = fit(tiny_config(tmp_path, synthetic, max_steps=1))
    assert result.global_step == 1 and result.best_checkpoint is None  # no validation ran
    assert result.last_checkpoint == result.run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(result.last_checkpoint, weights_only=True)["global_step"] == 1
    assert load_torch_model(result.model_path)[1].class_names == ("scratch",)  # from last.ckpt


def test_ema_checkpoints_hold_the_averaged_weights(synthetic: Path, tmp_path: Path) -> None:
    result = fit(tiny_config(tmp_path, synthetic, epochs=2, ema_decay=0.5, ema_start_step=1,
                             val_every_n_epochs=100))  # no validation: model.pt = last
    assert result.best_checkpoint is None
    ckpt = torch.load(result.last_checkpoint, weights_only=False)
    averaged, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert averaged.keys() == raw.keys()
    moved = [k for k in raw if raw[k].is_floating_point() and not torch.equal(raw[k], averaged[k])]
    assert moved  # 3 updates at decay 0.5 lag behind the raw weights
    model, _ = load_torch_model(result.model_path)
    exported = model.state_dict()
    key = next(k for k in moved if k.removeprefix("model.") in exported)
    assert torch.equal(exported[key.removeprefix("model.")], averaged[key])
    assert not torch.equal(exported[key.removeprefix("model.")], raw[key])


def test_ema_before_its_start_keeps_the_raw_weights_and_resumes(synthetic: Path,
                                                                  tmp_path: Path) -> None:
    cfg = dict(epochs=2, ema_decay=0.5, val_every_n_epochs=1)  # 2 steps per epoch
    result = fit(tiny_config(tmp_path, synthetic, run_name="late", **cfg))  # start 0.5 x 4 = 2
    ckpts = result.run_dir / "checkpoints"
    before = torch.load(ckpts / "epoch000.ckpt", weights_only=False)
    after = torch.load(ckpts / "epoch001.ckpt", weights_only=False)
    assert "current_model_state" not in before  # Lightning's own callback stores its fresh copy
    assert "current_model_state" in after and after["averaging_state"]["n_averaged"] == 2
    # a resume from the plain checkpoint starts the average when due, from the raw weights
    resumed = fit(tiny_config(tmp_path, synthetic, run_name=None, resume=ckpts / "epoch000.ckpt",
                              **cfg))
    again = torch.load(resumed.last_checkpoint, weights_only=False)
    assert resumed.global_step == 4 and again["averaging_state"]["n_averaged"] == 2


def test_ema_start_the_schedule_never_reaches_is_refused(synthetic: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ema_start_step 2 is at or after the last of this "
                       r"run's 2 training steps.*ema_start_fraction of the steps \(0.5: step 1\)"):
        fit(tiny_config(tmp_path, synthetic, epochs=1, ema_decay=0.5, ema_start_step=2))


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "truncated", "foreign", "model"])
def test_bad_resume_file_is_refused_before_anything_is_created(
    synthetic: Path, tmp_path: Path, kind: str
) -> None:
    from typer.testing import CliRunner

    from scratchdet.cli import app
    from scratchdet.config import dump_config

    path = tmp_path / f"{kind}.ckpt"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a checkpoint")
    elif kind in ("truncated", "foreign"):
        torch.save({"state_dict": {"w": torch.zeros(1000)}, "epoch": 0, "global_step": 2}, path)
        if kind == "truncated":  # a copy cut short
            path.write_bytes(path.read_bytes()[:600])
    elif kind == "model":  # a model.pt: weights and spec, no training state
        from scratchdet.artifact import save_model
        from scratchdet.training.checkpoint import spec_for

        cfg = tiny_config(tmp_path, synthetic)
        save_model(path, {}, spec_for(cfg, ["scratch"], [1]))
    expected = {
        "missing": "not found", "folder": "is a folder", "text": "not a readable torch checkpoint",
        "truncated": "not a readable torch checkpoint", "foreign": "no 'scratchdet' entry",
        "model": "a model file without the training state",
    }[kind]
    cfg = tiny_config(tmp_path, synthetic, resume=path, run_name=None)
    with pytest.raises(ConfigError, match=rf"resume: .*{kind}\.ckpt.*{expected}"):
        fit(cfg)
    config = tmp_path / "train.yaml"
    config.write_text(dump_config(tiny_config(tmp_path, synthetic, run_name=None)))
    res = CliRunner().invoke(app, ["train", str(config), "--resume", str(path)])
    assert res.exit_code == 2, res.output
    assert f"{kind}.ckpt" in res.output and expected in res.output
    assert "expected a training checkpoint written by scratchdet train" in res.output
    assert not (tmp_path / "runs").exists()  # no run folder, no log folder


@pytest.mark.parametrize(("bn_stats", "moved"),
                         [("frozen", False), ("batch", True), ("domain", True)])
def test_a_fit_trains_the_batch_norm_statistics_as_configured(
        synthetic: Path, tmp_path: Path, bn_stats: str, moved: bool) -> None:
    """Lightning never calls train(): the mode set at construction is what a fit trains with."""
    from scratchdet.models.backbones import lite0_imagenet_state_dict

    cfg = tiny_config(tmp_path, synthetic, max_steps=1,
                      model_overrides={"fpn_channels": 32, "bn_stats": bn_stats})
    state = load_torch_model(fit(cfg).model_path)[0].state_dict()
    imagenet = lite0_imagenet_state_dict()
    key = "blocks.2.0.bn1.running_mean"
    assert (not torch.equal(state[f"backbone.body.{key}"], imagenet[key])) == moved


def test_domain_statistics_are_estimated_once_and_then_kept(
        synthetic: Path, tmp_path: Path) -> None:
    """bn_stats: domain: the statistics come from the calibration batches before step 1 and
    training steps leave them (1 and 3 steps end with the same ones, unlike the weights)."""
    states = []
    for steps in (1, 3):
        cfg = tiny_config(tmp_path / str(steps), synthetic, max_steps=steps,
                          bn_calibration_batches=2,
                          model_overrides={"fpn_channels": 32, "bn_stats": "domain"})
        states.append(load_torch_model(fit(cfg).model_path)[0].state_dict())
    key = "backbone.body.blocks.2.0.bn1"
    assert torch.equal(states[0][f"{key}.running_mean"], states[1][f"{key}.running_mean"])
    assert torch.equal(states[0][f"{key}.running_var"], states[1][f"{key}.running_var"])
    conv = "backbone.body.blocks.2.0.conv_pw.weight"  # trainable: it moves
    assert not torch.equal(states[0][conv], states[1][conv])


def test_lightnings_eval_mode_warning_is_hidden_only_for_frozen_norms() -> None:
    from torch import nn

    from scratchdet.training.fit import _only_frozen_norms_in_eval

    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Linear(4, 2))
    assert not _only_frozen_norms_in_eval(net)  # all training: nothing to hide
    net[1].eval()
    assert _only_frozen_norms_in_eval(net)
    net[2].eval()  # a layer left in eval by mistake: Lightning's warning stays
    assert not _only_frozen_norms_in_eval(net)
    body = Lite0Backbone(pretrained=False, bn_stats="domain")  # timm norms hold .act, .drop
    assert _only_frozen_norms_in_eval(body)
    assert not _only_frozen_norms_in_eval(Lite0Backbone(pretrained=False, bn_stats="batch"))
