"""PyTorch runtime: a model file's detector as an ``nn.Module``, and its predictor adapter.

:func:`build_detector` is the one place a spec becomes a network
(:func:`scratchdet.models.factory.build_model`); :func:`load_torch_model` adds the weights of
a ``model.pt``/``.ckpt``; :class:`TorchDetector` gives any torchvision-convention detector
(``model(list[Tensor[3, H, W]]) -> list[{"boxes", "scores", "labels"}]``) the predictor's
numpy :data:`~scratchdet.inference.predictor.Detector` convention on any device.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scratchdet.artifact import ArtifactError, ModelSpec, read_checkpoint
from scratchdet.models.factory import build_model
from scratchdet.structures import Detections

TorchModel = Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]]


def build_detector(spec: ModelSpec, **changes: Any) -> nn.Module:
    """The network ``spec`` names (random weights), with ``changes`` to its overrides.

    Raises:
        ArtifactError: unknown preset or override (names them and the valid choices).
    """
    overrides = {**spec.overrides, **changes}
    try:
        return build_model(spec.preset, num_classes=len(spec.class_names), **overrides)
    except (ValueError, TypeError) as err:
        raise ArtifactError(f"preset {spec.preset!r} with overrides {overrides}: {err}") from None


def load_torch_model(path: str | Path) -> tuple[nn.Module, ModelSpec]:
    """The detector stored in ``path`` (``model.pt`` or ``.ckpt``), in eval mode, on CPU."""
    state, spec, _ = read_checkpoint(path)
    model = build_detector(spec, pretrained=False)  # every weight comes from the file
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ArtifactError(f"{path}: weights do not fit preset {spec.preset!r} ({err})") from None
    return model.eval(), spec


class TorchDetector:
    """A torch detector with the predictor's convention: ``uint8[H, W, 3]`` crops in,
    :class:`~scratchdet.structures.Detections` out (on the CPU).

    Args:
        model: a torchvision-convention detector; an ``nn.Module`` is put in eval mode and
            moved to ``device`` here.
        device: where inputs are sent ("cpu", "cuda", "cuda:1", ...).
    """

    def __init__(self, model: TorchModel, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model
        if isinstance(model, nn.Module):
            model.eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        batch = [torch.from_numpy(image).permute(2, 0, 1).to(self.device).float().div_(255)
                 for image in images]
        return [
            Detections.from_arrays(out["boxes"].detach().cpu().numpy(),
                                   out["scores"].detach().cpu().numpy(),
                                   out["labels"].detach().cpu().numpy())
            for out in self.model(batch)
        ]
