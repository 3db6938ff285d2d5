"""EfficientNet-Lite stages run with their frozen batch norms folded into the convolutions.

The Lite backbones keep every batch norm frozen (running statistics and affine), so each
convolution followed by its batch norm is one affine map of the input: the convolution with
its weight scaled per output channel, plus a bias. Computing that instead of the two layers
skips a pass over every activation map in the forward and in the backward pass (a default
training step with frozen statistics on 2 cores, 8 interleaved rounds of 10 steps: 0.596 s
folded against 0.630 s unfolded).

The modules and their state dict stay timm's (checkpoints load as before); the fold is
recomputed at every call from the current weights (weight-sized work), so the gradient that
reaches a trainable convolution's weight is the one the two layers give. A block of a kind
not handled here, or a batch norm in training mode, runs unfolded. The folded path calls
``F.conv2d`` itself: hooks on the convolution modules do not run and a traced graph names its
nodes after the calling module, so the backbone folds only in training (``Lite0Backbone``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _conv_and_padding(conv: nn.Module, x: Tensor) -> tuple[nn.Conv2d, Tensor, tuple]:
    """The plain convolution inside ``conv``, its input padded as ``conv`` pads it, and the
    padding left to the convolution itself."""
    pads = getattr(conv, "pads", None)  # backbones.EvenSamePadConv2d: static TF "same"
    if pads is not None:
        return conv.conv, F.pad(x, pads), conv.conv.padding
    if type(conv).__name__ == "Conv2dSame":  # timm: TF "same" computed from the input
        from timm.layers.padding import pad_same
        return conv, pad_same(x, conv.kernel_size, conv.stride, conv.dilation), (0, 0)
    return conv, x, conv.padding


def conv_bn(conv: nn.Module, bn: nn.Module, x: Tensor) -> Tensor:
    """``bn(conv(x))`` for a timm ``BatchNormAct2d`` in eval mode, as one convolution."""
    plain_conv = getattr(conv, "padding_mode", "zeros") == "zeros"
    if bn.training or not isinstance(bn, nn.BatchNorm2d) or not hasattr(bn, "act") \
            or not plain_conv:  # only a timm BatchNormAct2d has .act and .drop
        return bn(conv(x))
    inner, x, padding = _conv_and_padding(conv, x)
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    bias = bn.bias - bn.running_mean * scale
    if inner.bias is not None:
        bias = bias + inner.bias * scale
    y = F.conv2d(x, inner.weight * scale.reshape(-1, 1, 1, 1), bias, inner.stride, padding,
                 inner.dilation, inner.groups)
    return bn.act(bn.drop(y))


def _plain(module: nn.Module | None) -> bool:
    return module is None or isinstance(module, nn.Identity)


def _layer_pairs(block: nn.Module) -> list[tuple[str, str]] | None:
    """The (convolution, batch norm) attribute pairs of a timm EfficientNet block in order,
    or None when the block has parts the fold does not reproduce."""
    if not all(_plain(getattr(block, name, None))
               for name in ("conv_s2d", "aa", "se", "drop_path")):
        return None
    if hasattr(block, "conv_pwl"):  # InvertedResidual
        return [("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3")]
    if hasattr(block, "conv_dw") and hasattr(block, "conv_pw"):  # DepthwiseSeparableConv
        return [("conv_dw", "bn1"), ("conv_pw", "bn2")]
    return None


def run_block(block: nn.Module, x: Tensor) -> Tensor:
    """``block(x)`` for a timm EfficientNet-Lite block, with its batch norms folded."""
    pairs = _layer_pairs(block)
    if pairs is None:
        return block(x)
    shortcut = x
    for conv, bn in pairs:
        x = conv_bn(getattr(block, conv), getattr(block, bn), x)
    return x + shortcut if block.has_skip else x


def run_stage(stage: nn.Module, x: Tensor) -> Tensor:
    """A timm stage (an ``nn.Sequential`` of blocks) with :func:`run_block`."""
    for block in stage:
        x = run_block(block, x)
    return x
