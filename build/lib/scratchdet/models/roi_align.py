"""RoIAlign with a faster CPU backward, for training.

torchvision's CPU ``roi_align`` backward walks every RoI, channel, bin and sample point on one
thread and recomputes the bilinear weights for each channel: on the default recipe it was 20%
of a training step (``docs/speed.md``). The gradient is the same scatter written as a few
``index_add_`` calls over channel rows: the bilinear weights are computed once per RoI, bin
and sample point (they do not depend on the channel) and each of the ``4 * sampling_ratio**2``
(sample point, corner) pairs adds one weighted row of ``grad_output`` per RoI bin.

The forward is torchvision's. The fast backward is used only where it applies (CPU, a fixed
``sampling_ratio > 0``, gradients wanted, not tracing); everything else, prediction and ONNX
export included, runs torchvision's op unchanged. The gradient equals torchvision's up to the
order of float additions (``tests/models/test_roi_align.py``).
"""

from __future__ import annotations

import math

import torch
import torchvision
from torch import Tensor
from torch.autograd.function import FunctionCtx
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops.poolers import LevelMapper


def axis_samples(start: Tensor, bin_size: Tensor, pooled: int, grid: int,
                 size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Bilinear taps along one axis of each RoI's sample points (torchvision's rule).

    ``start``, ``bin_size``: ``float[R]`` in feature-map pixels; ``pooled`` bins of ``grid``
    sample points each, on an axis ``size`` pixels long. Returns ``(low, high, w_low, w_high)``,
    each ``[R, pooled, grid]``: the two neighbouring pixel indices of every sample point and
    their weights; a point more than one pixel outside the map gets weight 0 on both.
    """
    k = torch.arange(pooled * grid, device=start.device)
    bins = torch.div(k, grid, rounding_mode="floor").to(start.dtype)
    sub = (k % grid).to(start.dtype) + 0.5
    pos = start[:, None] + bins * bin_size[:, None] + sub * bin_size[:, None] / grid
    inside = ((pos >= -1.0) & (pos <= size)).to(start.dtype)
    pos = pos.clamp(min=0.0)
    low = pos.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(pos), pos - low.to(pos.dtype))
    shape = (len(start), pooled, grid)
    return (low.view(shape), high.view(shape), ((1.0 - frac) * inside).view(shape),
            (frac * inside).view(shape))


def roi_align_input_grad(grad_output: Tensor, rois: Tensor, input_shape: tuple[int, ...],
                         spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
    """The gradient of ``torchvision.ops.roi_align`` with respect to its input.

    ``grad_output``: ``[R, C, PH, PW]``; ``rois``: ``[R, 5]`` (batch index, x1, y1, x2, y2 in
    input-image pixels); ``input_shape``: ``(N, C, H, W)``; ``sampling_ratio`` > 0.
    """
    n, c, h, w = input_shape
    r, _, ph, pw = grad_output.shape
    grad = grad_output.new_zeros((n * h * w, c))
    if r == 0:
        return grad.view(n, h, w, c).permute(0, 3, 1, 2).contiguous()
    g = sampling_ratio
    boxes = rois[:, 1:].to(grad_output.dtype) * spatial_scale - (0.5 if aligned else 0.0)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if not aligned:
        width, height = width.clamp(min=1.0), height.clamp(min=1.0)
    ys = axis_samples(boxes[:, 1], height / ph, ph, g, h)
    xs = axis_samples(boxes[:, 0], width / pw, pw, g, w)
    base = rois[:, 0].long()[:, None, None] * (h * w)
    rows = grad_output.permute(0, 2, 3, 1).reshape(r * ph * pw, c)
    scale = 1.0 / (g * g)
    for iy in range(g):
        for y_index, y_weight in ((ys[0], ys[2]), (ys[1], ys[3])):
            y_at = base + y_index[:, :, iy, None] * w  # [R, PH, 1]
            wy = y_weight[:, :, iy, None] * scale
            for ix in range(g):
                for x_index, x_weight in ((xs[0], xs[2]), (xs[1], xs[3])):
                    index = (y_at + x_index[:, None, :, ix]).reshape(-1)
                    weight = (wy * x_weight[:, None, :, ix]).reshape(-1, 1)
                    grad.index_add_(0, index, rows * weight)
    return grad.view(n, h, w, c).permute(0, 3, 1, 2).contiguous()


class _RoIAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, features: Tensor, rois: Tensor, output_size: tuple[int, int],
                spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
        ctx.save_for_backward(rois)
        ctx.settings = (tuple(features.shape), spatial_scale, sampling_ratio, aligned)  # type: ignore[attr-defined]
        return tv_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        (rois,) = ctx.saved_tensors  # type: ignore[attr-defined]
        shape, spatial_scale, sampling_ratio, aligned = ctx.settings  # type: ignore[attr-defined]
        grad = roi_align_input_grad(grad_output.contiguous(), rois, shape, spatial_scale,
                                    sampling_ratio, aligned)
        return grad, None, None, None, None, None


def fast_backward_applies(features: Tensor, sampling_ratio: int) -> bool:
    """Whether the fast backward is used: CPU, ``sampling_ratio > 0``, ``features`` needing a
    gradient, not tracing or scripting (prediction and export run torchvision's op)."""
    return (features.device.type == "cpu" and sampling_ratio > 0 and torch.is_grad_enabled()
            and features.requires_grad and not torchvision._is_tracing()
            and not torch.jit.is_scripting())


def roi_align(features: Tensor, rois: Tensor, output_size: tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False) -> Tensor:
    """``torchvision.ops.roi_align`` (``rois`` as ``[R, 5]``), with the fast backward where it
    applies: CPU, ``sampling_ratio > 0``, ``features`` needing a gradient, not tracing."""
    if not fast_backward_applies(features, sampling_ratio):
        return tv_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)
    out: Tensor = _RoIAlign.apply(features, rois, output_size, spatial_scale, sampling_ratio,
                                  aligned)
    return out


def level_scale(feature: Tensor, image_size: tuple[int, int]) -> float:
    """The power of two that maps image pixels to this feature map's pixels (FPN levels)."""
    ratios = [feature.shape[-2] / image_size[0], feature.shape[-1] / image_size[1]]
    scales = {2.0 ** round(math.log2(ratio)) for ratio in ratios}
    if len(scales) != 1:
        raise ValueError(f"feature map {tuple(feature.shape[-2:])} is not a power-of-two "
                         f"reduction of the padded image size {image_size}")
    return scales.pop()


class FastMultiScaleRoIAlign(MultiScaleRoIAlign):
    """``torchvision.ops.MultiScaleRoIAlign`` whose training pass uses :func:`roi_align`'s
    fast CPU backward; same settings, same outputs, no parameters. Prediction, scripting and
    ONNX export run torchvision's module unchanged."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]]) -> Tensor:
        features = [x[name] for name in self.featmap_names]
        if not fast_backward_applies(features[0], self.sampling_ratio):
            return super().forward(x, boxes, image_shapes)
        if self.scales is None or self.map_levels is None:
            image_size = (max(s[0] for s in image_shapes), max(s[1] for s in image_shapes))
            self.scales = [level_scale(f, image_size) for f in features]
            self.map_levels = LevelMapper(
                int(-math.log2(self.scales[0])), int(-math.log2(self.scales[-1])),
                canonical_scale=self.canonical_scale, canonical_level=self.canonical_level)
        rois = torch.cat([torch.cat([b.new_full((len(b), 1), i), b], dim=1)
                          for i, b in enumerate(boxes)])
        levels = self.map_levels(boxes) if len(features) > 1 else torch.zeros_like(rois[:, 0])
        pooled = features[0].new_zeros((len(rois), features[0].shape[1], *self.output_size))
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            chosen = torch.where(levels == level)[0]
            pooled[chosen] = roi_align(feature, rois[chosen], self.output_size, scale,
                                       self.sampling_ratio)
        return pooled
