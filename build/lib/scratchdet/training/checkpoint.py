"""From a training run to a model file: the spec a config gives, and ``model.pt`` from the
best Lightning checkpoint. Reading and writing model files belongs to :mod:`scratchdet.artifact`.
"""

from __future__ import annotations

from pathlib import Path

from scratchdet.artifact import ModelSpec, read_checkpoint, save_model, spec_from_config
from scratchdet.training.config import TrainConfig


def spec_for(config: TrainConfig, class_names: list[str], category_ids: list[int]) -> ModelSpec:
    """The model spec of a run: what prediction needs, plus the whole config as recipe."""
    return spec_from_config(config.model_dump(mode="json"), class_names, category_ids)


def export_from_checkpoint(ckpt: str | Path, out: str | Path) -> Path:
    """Write ``model.pt`` at ``out`` from a Lightning checkpoint ``ckpt`` (atomic)."""
    state, spec, _ = read_checkpoint(ckpt)
    return save_model(out, state, spec)
