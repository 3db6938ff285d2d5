"""Shared detector parts: the input transform and the RPN/RoI assembly used by the presets.

Tensor formats (torchvision's): images ``list[Tensor[3, H, W]]`` float 0-1 RGB; targets
``{"boxes": FloatTensor[N, 4] xyxy px, "labels": Int64Tensor[N]}`` (labels from 1); eval output
``{"boxes": FloatTensor[K, 4], "scores": FloatTensor[K], "labels": Int64Tensor[K]}`` in the
input image's pixels; train mode returns a dict of scalar losses.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class DetectionTransform(GeneralizedRCNNTransform):
    """torchvision's transform with a switch to turn resizing off.

    With ``resize=True`` it resizes like ``GeneralizedRCNNTransform`` (shorter side to
    ``min_size``, longer side at most ``max_size``) and maps boxes back afterwards. With
    ``resize=False`` (native-resolution tiles) images keep their size and are only normalised
    and zero-padded to a multiple of ``size_divisible``.
    """

    def __init__(
        self,
        min_size: int,
        max_size: int,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        resize: bool = True,
        size_divisible: int = 32,
    ) -> None:
        super().__init__(min_size, max_size, list(image_mean), list(image_std),
                         size_divisible=size_divisible)
        self.resize_enabled = resize

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        if not self.resize_enabled:
            return image, target
        return super().resize(image, target)


def make_rpn(
    in_channels: int,
    anchor_sizes: Sequence[Sequence[int]],
    aspect_ratios: Sequence[float],
    *,
    pre_nms_train: int,
    post_nms_train: int,
    pre_nms_test: int,
    post_nms_test: int,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    nms_thresh: float = 0.7,
) -> RegionProposalNetwork:
    """An RPN with one 3x3 conv, ``len(sizes_per_level) * len(ratios)`` anchors per location."""
    per_level = {len(s) for s in anchor_sizes}
    if len(per_level) != 1:
        raise ValueError(f"anchor_sizes must have the same count per level, got {anchor_sizes}")
    ratios = (tuple(aspect_ratios),) * len(anchor_sizes)
    generator = AnchorGenerator(tuple(tuple(s) for s in anchor_sizes), ratios)
    head = RPNHead(in_channels, generator.num_anchors_per_location()[0])
    return RegionProposalNetwork(
        generator, head,
        fg_iou_thresh=0.7, bg_iou_thresh=0.3,
        batch_size_per_image=batch_size_per_image, positive_fraction=positive_fraction,
        pre_nms_top_n={"training": pre_nms_train, "testing": pre_nms_test},
        post_nms_top_n={"training": post_nms_train, "testing": post_nms_test},
        nms_thresh=nms_thresh,
    )


def assemble(
    backbone: nn.Module, rpn: nn.Module, roi_heads: nn.Module, transform: DetectionTransform
) -> GeneralizedRCNN:
    """A two-stage detector: transform -> backbone -> RPN -> RoI heads -> boxes in input px."""
    return GeneralizedRCNN(backbone, rpn, roi_heads, transform)
