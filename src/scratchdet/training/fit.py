"""``fit(cfg)``: one training run with ``lightning.Trainer`` used directly.

A run folder ``<output_dir>/<run_name>/`` holds ``config.yaml``, ``checkpoints/`` (one per
epoch, ``last.ckpt`` and ``best.ckpt`` by val bbox mAP), ``logs/{csv,tensorboard}/version_N/``
(one version per session: a resumed run adds one),
``model.pt`` (the best weights, else the last, + config + class names) and ``metrics.json``.
With ``ema_decay`` set, validation and every checkpoint from the average's start on use the
moving average of the weights (``training/ema.py``; the raw weights stay in
``current_model_state``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from scratchdet.artifact import ArtifactError, read_checkpoint
from scratchdet.config import ConfigError, dump_config
from scratchdet.io import write_json_atomic, write_text_atomic
from scratchdet.training.checkpoint import export_from_checkpoint
from scratchdet.training.config import TrainConfig
from scratchdet.training.datamodule import DetectionDataModule
from scratchdet.training.ema import LateStartEMA
from scratchdet.training.module import MONITOR, DetectionModule

#: Carries the generated run name to the other processes of a multi-process (DDP) run.
RUN_NAME_ENV = "SCRATCHDET_RUN_NAME"


class _NoAdverts(logging.Filter):
    """Drops Lightning's advertising tips from its log (they say nothing about the run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("\N{ELECTRIC LIGHT BULB} Tip:")


def _quiet_lightning() -> None:
    """No adverts, no deprecation warnings of Lightning's own internals (once a process)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoAdverts) for f in logger.filters):
            logger.addFilter(_NoAdverts())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*",
                            category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated.*")


def _model_line(cfg: TrainConfig, module: DetectionModule) -> str:
    params = [p for p in module.parameters()]
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return (f"model {cfg.model}: {sum(p.numel() for p in params) / 1e6:.1f} M parameters "
            f"({trainable / 1e6:.1f} M trainable)")


@dataclass(frozen=True)
class FitResult:
    """Where a run wrote its outputs and how it ended."""

    run_dir: Path
    best_checkpoint: Path | None  # None when no validation ran
    last_checkpoint: Path | None
    model_path: Path | None  # written by the rank-0 process only
    metrics: dict[str, float]
    global_step: int
    world_size: int


_RESUME_EXPECTED = ("expected a training checkpoint written by scratchdet train, e.g. "
                    "<run folder>/checkpoints/last.ckpt")


def check_resume(path: Path | None) -> None:
    """Refuse a ``resume`` file that is missing, unreadable or holds no training state.

    Raises:
        ConfigError: naming the file and what was expected (before anything is created).
    """
    if path is None:
        return
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise ConfigError(f"resume: {path}: {what}; {_RESUME_EXPECTED}")
    try:
        _, _, progress = read_checkpoint(path)
    except ArtifactError as err:
        raise ConfigError(f"resume: {err}; {_RESUME_EXPECTED}") from None
    if "global_step" not in progress:
        raise ConfigError(f"resume: {path}: a model file without the training state (epoch, "
                          f"step, optimizer); {_RESUME_EXPECTED}")


def run_dir_for(cfg: TrainConfig) -> Path:
    """``output_dir/run_name``; a time stamp shared by all local processes when no name.

    Resuming without a ``run_name`` continues in the run folder of the checkpoint, so that
    the best-checkpoint bookkeeping and the epoch numbering carry on.
    """
    name = cfg.run_name
    if name is None and cfg.resume is not None and cfg.resume.parent.name == "checkpoints":
        return cfg.resume.parent.parent
    if name is None:
        child = int(os.environ.get("LOCAL_RANK", "0")) > 0
        name = os.environ.get(RUN_NAME_ENV) if child else None
        name = name or time.strftime("%Y%m%d-%H%M%S")
        os.environ[RUN_NAME_ENV] = name
    return cfg.output_dir / name


def make_loggers(cfg: TrainConfig, run_dir: Path) -> list[Logger]:
    """The loggers named in ``cfg.loggers``; W&B / MLflow only when installed."""
    out: list[Logger] = []
    for name in cfg.loggers:
        if name == "csv":
            out.append(CSVLogger(run_dir / "logs", name="csv"))  # version_N per session
        elif name == "tensorboard":
            out.append(TensorBoardLogger(run_dir / "logs", name="tensorboard"))
        elif importlib.util.find_spec(name) is None:
            raise ConfigError(f"loggers: '{name}' asked for but not installed (pip install {name})")
        elif name == "wandb":
            from lightning.pytorch.loggers import WandbLogger

            out.append(WandbLogger(name=run_dir.name, save_dir=run_dir, project="scratchdet"))
        else:
            from lightning.pytorch.loggers import MLFlowLogger

            out.append(MLFlowLogger(experiment_name="scratchdet", run_name=run_dir.name))
    return out


class StepTimer(L.Callback):
    """Logs ``time/step_s``: wall seconds of each training step (data wait excluded)."""

    def __init__(self) -> None:
        self._start = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        module.log("time/step_s", time.perf_counter() - self._start, on_step=True, batch_size=1)


def _callbacks(cfg: TrainConfig, ckpt_dir: Path) -> list[Any]:
    keep = cfg.keep_epoch_checkpoints
    epochs = ModelCheckpoint(
        dirpath=ckpt_dir, filename="epoch{epoch:03d}", auto_insert_metric_name=False,
        every_n_epochs=1, save_top_k=keep, monitor="step" if keep > 0 else None, mode="max",
        save_last=True, save_on_train_epoch_end=True,
    )
    best = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", auto_insert_metric_name=False,
        monitor=MONITOR, mode="max", save_top_k=1,
    )
    out: list[Any] = [epochs, best]
    if cfg.ema_decay is not None:  # checkpoints then hold the averaged weights
        out.append(LateStartEMA(cfg.ema_decay, cfg.ema_start_step, cfg.ema_start_fraction))
    if cfg.loggers:
        out += [LearningRateMonitor(logging_interval="step"), StepTimer()]
    return out


def fit(cfg: TrainConfig) -> FitResult:
    """Train as ``cfg`` says; resume from ``cfg.resume`` when set.

    Raises:
        ConfigError: bad data, model, logger or resume file; a bad resume file is refused
            before anything is created.
    """
    check_resume(cfg.resume)
    _quiet_lightning()
    L.seed_everything(cfg.seed, workers=True)
    run_dir = run_dir_for(cfg)
    ckpt_dir = run_dir / "checkpoints"
    data = DetectionDataModule(cfg)
    module = DetectionModule(cfg.model_dump(mode="json"), data.class_names, data.category_ids)
    callbacks = _callbacks(cfg, ckpt_dir)
    trainer = L.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy,
        num_nodes=cfg.num_nodes, precision=cfg.precision,  # type: ignore[arg-type]
        max_epochs=cfg.epochs, max_steps=cfg.max_steps,
        check_val_every_n_epoch=cfg.val_every_n_epochs, num_sanity_val_steps=0,
        gradient_clip_val=cfg.grad_clip, logger=make_loggers(cfg, run_dir) or False,
        callbacks=callbacks, log_every_n_steps=cfg.log_every_n_steps,
        enable_progress_bar=cfg.progress_bar, default_root_dir=run_dir,
        enable_model_summary=False,  # its table printed "Total FLOPs: 0": one line instead
    )
    rank_zero_info(_model_line(cfg, module))
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "config.yaml", dump_config(cfg), force=True)
    with warnings.catch_warnings():
        if cfg.resume is not None:  # the run's own checkpoints are there: that is the point
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is "
                                    "not empty")
        if _only_frozen_norms_in_eval(module):  # bn_stats frozen / domain: meant so
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        trainer.fit(module, datamodule=data, ckpt_path=cfg.resume)
    return _finish(trainer, callbacks, run_dir)


def _only_frozen_norms_in_eval(module: nn.Module) -> bool:
    """True when the modules in eval mode at the start are batch norms (and their parts)
    that a backbone keeps frozen on purpose: Lightning's warning about them says nothing."""
    in_norm = {id(sub) for m in module.modules() if isinstance(m, nn.BatchNorm2d)
               for sub in m.modules()}
    in_eval = [m for m in module.modules() if not m.training]
    return bool(in_eval) and all(id(m) in in_norm for m in in_eval)


def _finish(trainer: L.Trainer, callbacks: list[Any], run_dir: Path) -> FitResult:
    epochs_cb, best_cb = callbacks[0], callbacks[1]
    best = Path(best_cb.best_model_path) if best_cb.best_model_path else None
    last = Path(epochs_cb.last_model_path) if epochs_cb.last_model_path else None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if best_cb.best_model_score is not None:
        metrics["best/" + MONITOR] = float(best_cb.best_model_score)
    model_path = None
    if trainer.is_global_zero and (best or last):
        model_path = export_from_checkpoint(best or last, run_dir / "model.pt")  # type: ignore[arg-type]
        summary = {
            "metrics": metrics, "best_checkpoint": str(best) if best else None,
            "last_checkpoint": str(last) if last else None, "global_step": trainer.global_step,
            "world_size": trainer.world_size,
        }
        write_json_atomic(run_dir / "metrics.json", summary, force=True, indent=2)
    return FitResult(run_dir, best, last, model_path, metrics, trainer.global_step,
                     trainer.world_size)
