"""The training config: one flat YAML file validated into :class:`TrainConfig`.

Data paths left empty default to the sample (``$SCRATCHDET_SAMPLE``): ``annotations/train.json``
+ ``train/`` and ``annotations/val.json`` + ``val/``. Defaults follow the seed recipe
(``configs/seed_cascade_x101.yaml``); see that file for what each value reproduces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from scratchdet.config import StrictConfig
from scratchdet.geometry.nested import DEFAULT_NESTED, format_nested, parse_nested
from scratchdet.settings import sample_dir
from scratchdet.structures import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE

LoggerName = Literal["csv", "tensorboard", "wandb", "mlflow"]
InputMode = Literal["resize", "tiles"]


class TrainConfig(StrictConfig):
    """Everything a training run needs; stored inside every checkpoint."""

    # model
    model: str = "cascade_rcnn_x101_32x4d_fpn"
    model_overrides: dict[str, Any] = Field(default_factory=dict)
    class_names: list[str] | None = None  # None: the categories of the train annotations
    # data
    train_annotations: Path | None = None
    train_images: Path | None = None
    val_annotations: Path | None = None
    val_images: Path | None = None
    input_mode: InputMode = "resize"
    resize: tuple[int, int] = (1333, 800)  # (long side max, short side max), ratio kept
    # tiles mode: training tiles and validation grid, and the grid's least overlap
    tile_size: int = Field(DEFAULT_TILE_SIZE, gt=0)
    tile_overlap: int = Field(DEFAULT_TILE_OVERLAP, ge=0)
    tile_options: dict[str, Any] = Field(default_factory=dict)  # scratchdet.data.tiles.TileConfig
    # prediction: red parts shown to the model as white ones (ModelSpec.red_polarity)
    red_polarity: bool = False
    # prediction: boxes nested in a better box, MODE[:IOS[:DECAY]] (ModelSpec.nested)
    nested: str = DEFAULT_NESTED
    # schedule
    epochs: int = Field(30, gt=0)
    max_steps: int = -1  # > 0 stops earlier than `epochs`
    batch_size: int = Field(2, gt=0)
    val_batch_size: int = Field(1, gt=0)
    val_every_n_epochs: int = Field(1, gt=0)
    # optimiser (SGD) and learning-rate schedule (linear warm-up, cosine per iteration)
    lr: float = Field(0.0025, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_iters: int = Field(500, ge=0)
    warmup_ratio: float = Field(0.001, gt=0, le=1)
    min_lr: float = Field(1e-7, ge=0)
    grad_clip: float | None = Field(None, gt=0)
    # weight averaging: an exponential moving average (EMA) of the weights, updated after
    # each step from its start on, is what validation sees and checkpoints hold from then on
    # (before: the raw weights). The start is ema_start_fraction of the run's optimizer steps
    # (0.5 of 3072: step 1536), or ema_start_step when set (refused past the last step)
    ema_decay: float | None = Field(None, gt=0, lt=1)  # None: off
    ema_start_fraction: float = Field(0.5, ge=0, lt=1)
    ema_start_step: int | None = Field(None, ge=0)
    # batch-norm statistics of a backbone built with bn_stats: domain, estimated on this many
    # training batches before the first step (models/bn_calibration.py)
    bn_calibration_batches: int = Field(32, gt=0)
    # augmentation (train only)
    hflip_p: float = Field(0.5, ge=0, le=1)
    photometric: bool = True
    brightness_delta: float = Field(32, ge=0, le=255)
    contrast_range: tuple[float, float] = (0.5, 1.5)
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta: float = Field(18, ge=0, le=180)  # degrees
    ssr_p: float = Field(0.4, ge=0, le=1)  # shift-scale-rotate probability
    ssr_shift: float = Field(0.0625, ge=0, le=1)
    ssr_scale: float = Field(0.15, ge=0, lt=1)
    ssr_rotate: float = Field(15, ge=0, le=180)  # degrees
    # runtime
    seed: int = 111
    num_workers: int = Field(2, ge=0)
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(1, gt=0)
    precision: str = "32-true"
    # outputs
    output_dir: Path = Path("runs")
    run_name: str | None = None  # None: a time stamp
    loggers: list[LoggerName] = Field(default_factory=lambda: ["csv", "tensorboard"])
    log_every_n_steps: int = Field(10, gt=0)
    progress_bar: bool = True
    keep_epoch_checkpoints: int = Field(-1, ge=-1)  # -1: keep one per epoch, k: the last k
    resume: Path | None = None

    @field_validator("resize")
    @classmethod
    def _resize_order(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) <= 0 or v[0] < v[1]:
            raise ValueError("expected (long side, short side), both > 0, long >= short")
        return v

    @field_validator("contrast_range", "saturation_range")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError("expected [low, high] with 0 <= low <= high")
        return v

    @field_validator("nested")
    @classmethod
    def _nested(cls, v: str) -> str:
        return format_nested(parse_nested(v))  # a bad rule: the grammar and the choices

    @field_validator("max_steps")
    @classmethod
    def _max_steps(cls, v: int) -> int:
        if v == 0 or v < -1:
            raise ValueError("expected -1 (no limit) or a positive number of steps")
        return v

    @model_validator(mode="after")
    def _lr_order(self) -> TrainConfig:
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if self.tile_overlap >= self.tile_size:
            raise ValueError("tile_overlap must be smaller than tile_size")
        return self

    def data_paths(self) -> dict[str, Path]:
        """The four data paths, empty ones filled from the sample folder."""
        root = sample_dir()
        return {
            "train_annotations": self.train_annotations or root / "annotations" / "train.json",
            "train_images": self.train_images or root / "train",
            "val_annotations": self.val_annotations or root / "annotations" / "val.json",
            "val_images": self.val_images or root / "val",
        }
