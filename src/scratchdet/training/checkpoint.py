"""Rebuild a trained detector from a checkpoint alone, without importing Lightning.

Two files hold a model: Lightning checkpoints (``*.ckpt``, plain ``torch.save`` dicts with
``state_dict`` and our ``scratchdet`` entry) and the exported ``model.pt``
(``{"format", "state_dict", "config", "class_names", "category_ids"}``, written atomically).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scratchdet.data.io import atomic_output
from scratchdet.training.config import TrainConfig
from scratchdet.training.detector import build_detector

MODEL_FORMAT = "scratchdet-model/1"
_META_KEY = "scratchdet"
_PREFIX = "model."


class CheckpointError(ValueError):
    """A file that is not a scratchdet checkpoint; the message names the file and the gap."""


@dataclass(frozen=True)
class ModelMeta:
    """What a checkpoint says about its model."""

    config: TrainConfig
    class_names: list[str]
    category_ids: list[int]
    source: Path
    extra: dict[str, Any] = field(default_factory=dict)  # epoch / global_step when known


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({err})") from None
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise CheckpointError(f"{path}: expected a dict with 'state_dict'")
    if blob.get("format") == MODEL_FORMAT:
        return blob["state_dict"], blob, {}
    if _META_KEY not in blob:
        raise CheckpointError(
            f"{path}: no '{_META_KEY}' entry (config + class names); "
            "expected a checkpoint written by scratchdet train"
        )
    state = {k[len(_PREFIX):]: v for k, v in blob["state_dict"].items() if k.startswith(_PREFIX)}
    extra = {k: blob[k] for k in ("epoch", "global_step") if k in blob}
    return state, blob[_META_KEY], extra


def read_meta(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    """The weights (keys of the bare detector) and the metadata stored in ``path``."""
    path = Path(path)
    state, meta, extra = _read(path)
    try:
        config = TrainConfig.model_validate(meta["config"])
        names, ids = list(meta["class_names"]), list(meta["category_ids"])
    except Exception as err:
        raise CheckpointError(f"{path}: stored config/class names do not validate: {err}") from None
    return state, ModelMeta(config, names, ids, path, extra)


def load_detector(path: str | Path) -> tuple[nn.Module, ModelMeta]:
    """The detector stored in ``path`` (a ``.ckpt`` or ``model.pt``), in eval mode, on CPU."""
    state, meta = read_meta(path)
    cfg = meta.config
    model = build_detector(cfg.model, len(meta.class_names), cfg.model_overrides)
    model.load_state_dict(state)
    return model.eval(), meta


def save_model(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``model.pt`` (weights + config + class names) through a temp file and a rename."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": MODEL_FORMAT,
        "state_dict": state_dict,
        "config": meta["config"],
        "class_names": meta["class_names"],
        "category_ids": meta["category_ids"],
    }
    with atomic_output(out) as tmp:
        torch.save(blob, tmp)
    return out


def export_from_checkpoint(ckpt: str | Path, out: str | Path) -> Path:
    """Write ``model.pt`` at ``out`` from a Lightning checkpoint ``ckpt``."""
    state, meta = read_meta(ckpt)
    return save_model(
        out,
        state,
        {
            "config": meta.config.model_dump(mode="json"),
            "class_names": meta.class_names,
            "category_ids": meta.category_ids,
        },
    )
