"""The one place training builds a detector: ``scratchdet.models.factory.build_model``."""

from __future__ import annotations

from typing import Any

from torch import nn

from scratchdet.config import ConfigError
from scratchdet.models.factory import build_model


def build_detector(name: str, num_classes: int, overrides: dict[str, Any]) -> nn.Module:
    """Preset ``name`` for ``num_classes`` object classes (background not counted).

    Raises:
        ConfigError: unknown preset or override, naming the config keys ``model`` /
            ``model_overrides`` and the valid choices.
    """
    try:
        return build_model(name, num_classes=num_classes, **overrides)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model={name!r}, model_overrides={overrides}: {err}") from None
