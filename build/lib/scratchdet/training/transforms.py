"""Training augmentations on torchvision ``transforms.v2`` with ``tv_tensors.BoundingBoxes``.

Called as ``image, target = transform(image, target)`` where ``image`` is a
``tv_tensors.Image`` (float, 0-1) and ``target`` holds ``boxes`` (``BoundingBoxes`` xyxy) and
``labels``; boxes follow every geometric change and degenerate ones are dropped.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from scratchdet.training.config import TrainConfig


def resize_scale(width: int, height: int, long_max: int, short_max: int) -> float:
    """The keep-ratio scale that fits a ``width`` x ``height`` photo inside (long, short).

    Same rule as mmdet's ``Resize(img_scale=(1333, 800), keep_ratio=True)``: the largest
    scale with long side <= ``long_max`` and short side <= ``short_max``.
    """
    return min(long_max / max(width, height), short_max / min(width, height))


def resized_size(width: int, height: int, long_max: int, short_max: int) -> tuple[int, int]:
    """``(width, height)`` after :func:`resize_scale`, rounded to the nearest pixel."""
    s = resize_scale(width, height, long_max, short_max)
    return int(width * s + 0.5), int(height * s + 0.5)


class PhotoMetricDistortion(v2.Transform):
    """mmdet's ``PhotoMetricDistortion`` on 0-1 float images; boxes pass through unchanged.

    Each step applies with probability 0.5, in mmdet's order: add a brightness delta
    (``brightness_delta`` in 0-255 units); multiply contrast (before or after the colour steps,
    chosen at random); scale saturation; shift hue by up to ``hue_delta`` degrees; permute
    the channels. Saturation uses torchvision's grey blend rather than mmdet's HSV multiply.
    """

    _transformed_types = (tv_tensors.Image,)

    def __init__(
        self,
        brightness_delta: float = 32,
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta: float = 18,
    ) -> None:
        super().__init__()
        self.brightness_delta = brightness_delta
        self.contrast_range = contrast_range
        self.saturation_range = saturation_range
        self.hue_delta = hue_delta

    @staticmethod
    def _maybe(lo: float, hi: float) -> float | None:
        if torch.rand(()) < 0.5:
            return None
        return float(torch.empty(()).uniform_(lo, hi))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {
            "brightness": self._maybe(-self.brightness_delta / 255, self.brightness_delta / 255),
            "contrast_first": bool(torch.rand(()) < 0.5),
            "contrast": self._maybe(*self.contrast_range),
            "saturation": self._maybe(*self.saturation_range),
            "hue": self._maybe(-self.hue_delta / 360, self.hue_delta / 360),
            "permutation": torch.randperm(3) if torch.rand(()) < 0.5 else None,
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        img = inpt.as_subclass(torch.Tensor)
        if params["brightness"] is not None:
            img = (img + params["brightness"]).clamp(0, 1)
        if params["contrast_first"] and params["contrast"] is not None:
            img = (img * params["contrast"]).clamp(0, 1)
        if params["saturation"] is not None:
            img = F.adjust_saturation(img, params["saturation"])
        if params["hue"] is not None:
            img = F.adjust_hue(img, params["hue"])
        if not params["contrast_first"] and params["contrast"] is not None:
            img = (img * params["contrast"]).clamp(0, 1)
        if params["permutation"] is not None:
            img = img[params["permutation"]]
        return tv_tensors.wrap(img, like=inpt)


def build_train_transforms(cfg: TrainConfig) -> v2.Compose:
    """Flip, photometric distortion and shift-scale-rotate as set in ``cfg``."""
    steps: list[v2.Transform] = []
    if cfg.hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=cfg.hflip_p))
    if cfg.photometric:
        steps.append(
            PhotoMetricDistortion(
                cfg.brightness_delta, cfg.contrast_range, cfg.saturation_range, cfg.hue_delta
            )
        )
    if cfg.ssr_p > 0:
        affine = v2.RandomAffine(
            degrees=cfg.ssr_rotate,
            translate=(cfg.ssr_shift, cfg.ssr_shift),
            scale=(1 - cfg.ssr_scale, 1 + cfg.ssr_scale),
        )
        steps.append(v2.RandomApply([affine], p=cfg.ssr_p))
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1)]
    return v2.Compose(steps)

