"""Named detector presets: ``build_model(name, num_classes=1, **overrides)``.

Each preset is a typed builder function; ``PRESETS`` maps names to them. Overrides are the
builder's keyword arguments (unknown ones raise ``ValueError`` listing the accepted ones).
Common overrides: ``min_size``/``max_size`` (resize like torchvision), ``resize`` (``False``:
native-resolution tiles, only normalise and pad to the stride), ``score_thresh``,
``nms_thresh``, ``detections_per_img`` and ``pretrained`` (bool, or a local checkpoint path
loaded with :func:`load_pretrained`). Nothing is ever downloaded.

``num_classes`` counts foreground classes (1 = scratch); labels in targets start at 1.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.roi_heads import RoIHeads

from scratchdet.models import backbones
from scratchdet.models.cascade import (
    SEED_BOX_CODER_STDS,
    SEED_IOU_THRESHOLDS,
    SEED_STAGE_LOSS_WEIGHTS,
    CascadePredictor,
    CascadeRoIHeads,
)
from scratchdet.models.checkpoints import load_pretrained
from scratchdet.models.detector import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DetectionTransform,
    assemble,
    make_rpn,
)
from scratchdet.models.roi_align import FastMultiScaleRoIAlign

__all__ = ["DEFAULT_CPU_MODEL", "PRESETS", "build_model", "load_pretrained"]

PretrainedArg = bool | str | Path
LITE0_MEAN_STD: tuple[float, float] = (0.5, 0.5)
#: RPN anchors of the Lite detectors: two sizes on each of P3-P5, ratios (height / width)
#: 1:3, 1:1, 3:1, for 20-300 px scratches.
LITE_ANCHOR_SIZES: tuple[tuple[int, ...], ...] = ((24, 40), (64, 96), (144, 224))
LITE_ANCHOR_RATIOS: tuple[float, ...] = (0.33, 1.0, 3.0)


def _finish(model: nn.Module, pretrained: PretrainedArg, name: str, builtin: bool) -> nn.Module:
    if isinstance(pretrained, str | Path):
        load_pretrained(model, pretrained)
    elif pretrained is True and not builtin:
        raise ValueError(
            f"{name}: no built-in weights (nothing is downloaded); pass pretrained=<path to a "
            "torchvision or MMDetection checkpoint>"
        )
    return model


def lite0_fpn_fast(
    num_classes: int = 1,
    *,
    pretrained: PretrainedArg = True,
    fpn_channels: int = 64,
    frozen_blocks: int = 2,
    resize: bool = False,
    min_size: int = 1024,
    max_size: int = 1024,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
    rpn_post_nms_test: int = 300,
    roi_batch_size: int = 128,
    variant: str = "lite0",
    cascade: bool = False,
    anchor_sizes: Sequence[Sequence[int]] = LITE_ANCHOR_SIZES,
    anchor_ratios: Sequence[float] = LITE_ANCHOR_RATIOS,
    bn_stats: str = "batch",
) -> nn.Module:
    """CPU-fast two-stage detector: EfficientNet-Lite0 (ImageNet) + 64-channel FPN P3-P5.

    Light RPN (6 anchors per location sized for 20-300 px scratches, 300 proposals at test),
    RoIAlign 7x7 and a 2x256 FC box head trained on 128 RoIs per image. Default: no resizing
    (native-resolution tiles); ``pretrained=True`` loads the backbone's ImageNet weights.
    ``variant``: the EfficientNet-Lite behind it (presets ``lite1_fpn_fast`` and
    ``lite2_fpn_fast``: deeper, and for lite2 wider; Lite1's ImageNet weights come with the
    ``train`` extra, Lite2's with the optional ``lite`` extra).
    ``cascade``: three box stages trained at IoU 0.5/0.6/0.7 (the seed's Cascade R-CNN
    settings, 2x256 FC heads) instead of one: boxes and scores that favour well-placed boxes
    (presets ``lite0_cascade_fast`` and ``lite1_cascade_fast``, the default).
    ``anchor_sizes`` (one tuple per FPN level P3-P5, the same count on each) and
    ``anchor_ratios`` (height / width): the RPN's anchors.
    ``bn_stats``: the backbone's batch norms in training, ``"batch"`` (each batch's statistics,
    the measured recipes), ``"frozen"`` (ImageNet statistics, folded: a faster step) or
    ``"domain"`` (as frozen, from statistics a fit first estimates on its training batches).
    """
    backbone = backbones.lite0_fpn(fpn_channels, pretrained=pretrained is True,
                                   frozen_blocks=frozen_blocks, variant=variant,
                                   bn_stats=bn_stats)
    rpn = make_rpn(
        fpn_channels, anchor_sizes, anchor_ratios,
        pre_nms_train=1000, post_nms_train=600, pre_nms_test=500, post_nms_test=rpn_post_nms_test,
    )
    pool = FastMultiScaleRoIAlign(["0", "1", "2"], 7, 2)
    post = {"score_thresh": score_thresh, "nms_thresh": nms_thresh,
            "detections_per_img": detections_per_img}
    roi_heads: nn.Module
    if cascade:
        stages = len(SEED_IOU_THRESHOLDS)
        roi_heads = CascadeRoIHeads(
            pool, [TwoMLPHead(fpn_channels * 49, 256) for _ in range(stages)],
            [CascadePredictor(256, num_classes + 1) for _ in range(stages)],
            SEED_IOU_THRESHOLDS, SEED_BOX_CODER_STDS, SEED_STAGE_LOSS_WEIGHTS,
            batch_size_per_image=roi_batch_size, positive_fraction=0.25, **post,
        )
    else:
        roi_heads = RoIHeads(
            pool, TwoMLPHead(fpn_channels * 49, 256), FastRCNNPredictor(256, num_classes + 1),
            fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=roi_batch_size,
            positive_fraction=0.25, bbox_reg_weights=None, **post,
        )
    mean, std = LITE0_MEAN_STD
    transform = DetectionTransform(min_size, max_size, (mean,) * 3, (std,) * 3, resize=resize)
    model = assemble(backbone, rpn, roi_heads, transform)
    name = f"{variant}_{'cascade' if cascade else 'fpn'}_fast"
    return _finish(model, pretrained, name, builtin=True)


def lite0_fcos(
    num_classes: int = 1,
    *,
    pretrained: PretrainedArg = True,
    fpn_channels: int = 64,
    frozen_blocks: int = 2,
    head_convs: int = 2,
    resize: bool = False,
    min_size: int = 1024,
    max_size: int = 1024,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
) -> nn.Module:
    """Single-stage alternative: Lite0 + 64-channel FPN P3-P5 + torchvision FCOS head."""
    backbone = backbones.lite0_fpn(fpn_channels, pretrained=pretrained is True,
                                   frozen_blocks=frozen_blocks)
    anchors = AnchorGenerator(((8,), (16,), (32,)), ((1.0,),) * 3)
    head = FCOSHead(fpn_channels, 1, num_classes + 1, num_convs=head_convs)
    with torch.no_grad():  # channel 0 (background) is never a target: start it switched off
        head.classification_head.cls_logits.bias[0] = -20.0
    mean, std = LITE0_MEAN_STD
    model = FCOS(
        backbone, num_classes + 1, min_size=min_size, max_size=max_size,
        image_mean=[mean] * 3, image_std=[std] * 3, anchor_generator=anchors, head=head,
        score_thresh=score_thresh, nms_thresh=nms_thresh, detections_per_img=detections_per_img,
    )
    model.transform = DetectionTransform(min_size, max_size, (mean,) * 3, (std,) * 3,
                                         resize=resize)
    return _finish(model, pretrained, "lite0_fcos", builtin=True)


def faster_rcnn_r50_fpn(
    num_classes: int = 1,
    *,
    pretrained: PretrainedArg = False,
    resize: bool = True,
    min_size: int = 800,
    max_size: int = 1333,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
) -> nn.Module:
    """torchvision's Faster R-CNN ResNet-50 FPN (random, or weights from a local file)."""
    backbone = backbones.resnet50_fpn()
    rpn = make_rpn(256, ((32,), (64,), (128,), (256,), (512,)), (0.5, 1.0, 2.0),
                   pre_nms_train=2000, post_nms_train=2000, pre_nms_test=1000, post_nms_test=1000)
    roi_heads = RoIHeads(
        FastMultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
        TwoMLPHead(256 * 49, 1024),
        FastRCNNPredictor(1024, num_classes + 1),
        fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512, positive_fraction=0.25,
        bbox_reg_weights=None, score_thresh=score_thresh, nms_thresh=nms_thresh,
        detections_per_img=detections_per_img,
    )
    transform = DetectionTransform(min_size, max_size, IMAGENET_MEAN, IMAGENET_STD, resize=resize)
    model = assemble(backbone, rpn, roi_heads, transform)
    return _finish(model, pretrained, "faster_rcnn_r50_fpn", builtin=False)


def cascade_rcnn_x101_32x4d_fpn(
    num_classes: int = 1,
    *,
    pretrained: PretrainedArg = False,
    resize: bool = True,
    min_size: int = 800,
    max_size: int = 1333,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
) -> nn.Module:
    """The seed: Cascade R-CNN, ResNeXt-101 32x4d FPN (P2-P6), 3 stages (MMDetection 2.x config).

    RPN: anchors 32-512 (scale 8 x strides 4-64), ratios 0.5/1/2, 256 samples at 0.5 positives,
    2000/2000 boxes (train) and 1000 after NMS 0.7 (test). Stages: IoU 0.5/0.6/0.7, loss weights
    1/0.5/0.25, stds in ``SEED_BOX_CODER_STDS``, 2x1024 FC heads, 512 RoIs at 0.25 positives.
    Weights: ``pretrained=<path>`` (MMDetection checkpoint, torchvision ImageNet ResNeXt or our
    own state dict); about 87.8M parameters with one class.
    """
    backbone = backbones.resnext101_32x4d_fpn()
    rpn = make_rpn(256, ((32,), (64,), (128,), (256,), (512,)), (0.5, 1.0, 2.0),
                   pre_nms_train=2000, post_nms_train=2000, pre_nms_test=1000, post_nms_test=1000)
    stages = len(SEED_IOU_THRESHOLDS)
    roi_heads = CascadeRoIHeads(
        FastMultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
        [TwoMLPHead(256 * 49, 1024) for _ in range(stages)],
        [CascadePredictor(1024, num_classes + 1) for _ in range(stages)],
        SEED_IOU_THRESHOLDS, SEED_BOX_CODER_STDS, SEED_STAGE_LOSS_WEIGHTS,
        batch_size_per_image=512, positive_fraction=0.25, score_thresh=score_thresh,
        nms_thresh=nms_thresh, detections_per_img=detections_per_img,
    )
    transform = DetectionTransform(min_size, max_size, IMAGENET_MEAN, IMAGENET_STD, resize=resize)
    model = assemble(backbone, rpn, roi_heads, transform)
    return _finish(model, pretrained, "cascade_rcnn_x101_32x4d_fpn", builtin=False)


PRESETS: dict[str, Callable[..., nn.Module]] = {
    "cascade_rcnn_x101_32x4d_fpn": cascade_rcnn_x101_32x4d_fpn,
    "lite0_fpn_fast": lite0_fpn_fast,
    "lite1_fpn_fast": functools.partial(lite0_fpn_fast, variant="lite1"),
    "lite2_fpn_fast": functools.partial(lite0_fpn_fast, variant="lite2"),
    "lite0_cascade_fast": functools.partial(lite0_fpn_fast, cascade=True),
    "lite1_cascade_fast": functools.partial(lite0_fpn_fast, variant="lite1", cascade=True),
    "lite0_fcos": lite0_fcos,
    "faster_rcnn_r50_fpn": faster_rcnn_r50_fpn,
}
DEFAULT_CPU_MODEL = "lite1_cascade_fast"


def build_model(name: str, num_classes: int = 1, **overrides: Any) -> nn.Module:
    """Build preset ``name``; ``overrides`` are that preset's builder keyword arguments.

    Raises:
        ValueError: unknown preset (lists them) or unknown override (lists the accepted ones).
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}; presets: {', '.join(sorted(PRESETS))}")
    builder = PRESETS[name]
    # the backbone variant is the preset's name (lite1_fpn_fast), not an override
    accepted = [p for p in inspect.signature(builder).parameters
                if p not in ("num_classes", "variant")]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(f"{name}: unknown override(s) {unknown}; accepted: {', '.join(accepted)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 (foreground classes), got {num_classes}")
    return builder(num_classes, **overrides)
