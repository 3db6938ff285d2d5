"""The fast RoIAlign backward equals torchvision's gradient; prediction paths are untouched."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align

from scratchdet.models.factory import build_model
from scratchdet.models.roi_align import (
    FastMultiScaleRoIAlign,
    axis_samples,
    level_scale,
    roi_align,
)


def _rois(n_images: int, count: int, extent: tuple[float, float], seed: int,
          dtype: torch.dtype = torch.float64) -> Tensor:
    """Boxes of every kind: tiny, long and thin, partly and wholly outside the map."""
    gen = torch.Generator().manual_seed(seed)
    width, height = extent
    start = torch.rand(count, 2, generator=gen, dtype=dtype) * torch.tensor(
        [width * 1.3, height * 1.3], dtype=dtype) - torch.tensor([width * 0.15, height * 0.15],
                                                                  dtype=dtype)
    size = torch.rand(count, 2, generator=gen, dtype=dtype) * torch.tensor(
        [width * 0.8, height * 0.2], dtype=dtype)
    size[:5] = 0.3  # smaller than a pixel
    index = torch.randint(0, n_images, (count, 1), generator=gen).to(dtype)
    return torch.cat([index, start, start + size], dim=1)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize(("scale", "ratio"), [(0.5, 2), (1.0, 3), (0.25, 1)])
def test_gradient_equals_torchvision(aligned: bool, scale: float, ratio: int) -> None:
    features = torch.randn(2, 6, 19, 23, dtype=torch.float64, requires_grad=True)
    rois = _rois(2, 80, (23 / scale, 19 / scale), seed=int(scale * 10) + ratio)
    grad_out = torch.randn(80, 6, 7, 5, dtype=torch.float64)
    ours = roi_align(features, rois, (7, 5), scale, ratio, aligned)
    theirs = tv_roi_align(features, rois, (7, 5), scale, ratio, aligned)
    (grad_ours,) = torch.autograd.grad(ours, features, grad_out)
    (grad_theirs,) = torch.autograd.grad(theirs, features, grad_out)
    assert torch.equal(ours, theirs)
    assert grad_theirs.abs().max() > 1.0  # boxes do reach the map
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-12)


def test_float32_gradient_close_and_no_rois() -> None:
    features = torch.randn(1, 16, 32, 32, requires_grad=True)
    rois = _rois(1, 200, (256, 256), seed=3, dtype=torch.float32)
    grad_out = torch.randn(200, 16, 7, 7)
    (ours,) = torch.autograd.grad(roi_align(features, rois, (7, 7), 0.125, 2), features, grad_out)
    (theirs,) = torch.autograd.grad(tv_roi_align(features, rois, (7, 7), 0.125, 2), features,
                                    grad_out)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)
    empty = roi_align(features, rois[:0], (7, 7), 0.125, 2)
    (grad,) = torch.autograd.grad(empty.sum(), features)
    assert empty.shape == (0, 16, 7, 7) and torch.count_nonzero(grad) == 0


def test_axis_samples_follow_torchvision_edge_rule() -> None:
    # one bin, 2 samples, axis 4 px long: points at 0.5 and 3.5 from start -0.5 .. 3.5 + ...
    start = torch.tensor([-0.5, 2.9, -3.0], dtype=torch.float64)
    low, high, w_low, w_high = axis_samples(start, torch.tensor([2.0, 2.0, 1.0]).double(), 1,
                                            2, size=4)
    # roi 0: points 0.0 -> (0, 1, 1, 0) and 1.0 -> (1, 2, 1, 0)
    assert low[0, 0].tolist() == [0, 1] and high[0, 0].tolist() == [1, 2]
    assert w_low[0, 0].tolist() == [1.0, 1.0] and w_high[0, 0].tolist() == [0.0, 0.0]
    # roi 1: points 3.4 (last pixel: both taps on pixel 3, weight 1) and 4.4 (outside: 0)
    assert low[1, 0].tolist() == [3, 3] and high[1, 0].tolist() == [3, 3]
    assert w_low[1, 0].tolist() == [1.0, 0.0] and w_high[1, 0].tolist() == [0.0, 0.0]
    # roi 2: points -2.75 and -2.25, more than a pixel outside: no weight
    assert (w_low[2] == 0).all() and (w_high[2] == 0).all()


def _levels() -> OrderedDict[str, Tensor]:
    gen = torch.Generator().manual_seed(0)
    return OrderedDict((name, torch.randn(2, 8, 64 // 2**i, 48 // 2**i, generator=gen,
                                          dtype=torch.float64).requires_grad_())
                       for i, name in enumerate(["0", "1", "2"]))


def test_multiscale_matches_torchvision_forward_and_backward() -> None:
    boxes = [_rois(1, 40, (384, 512), seed=s)[:, 1:].clamp(min=0) for s in (1, 2)]
    boxes = [torch.cat([b[:, :2], b[:, :2] + (b[:, 2:] - b[:, :2]).clamp(min=1) * 4], 1)
             for b in boxes]  # sizes across all three levels
    shapes = [(512, 384), (512, 384)]
    x = _levels()
    ours = FastMultiScaleRoIAlign(["0", "1", "2"], 7, 2)(x, boxes, shapes)
    theirs_module = MultiScaleRoIAlign(["0", "1", "2"], 7, 2)
    theirs = theirs_module(x, boxes, shapes)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    grad_out = torch.randn_like(ours)
    grads_ours = torch.autograd.grad(ours, list(x.values()), grad_out)
    grads_theirs = torch.autograd.grad(theirs, list(x.values()), grad_out)
    for level, (a, b) in enumerate(zip(grads_ours, grads_theirs, strict=True)):
        assert b.abs().max() > 0, f"no RoI landed on level {level}"
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_level_scale_refuses_a_map_that_is_no_power_of_two_reduction() -> None:
    assert level_scale(torch.zeros(1, 1, 64, 48), (512, 384)) == 0.125
    with pytest.raises(ValueError, match="not a power-of-two"):
        level_scale(torch.zeros(1, 1, 64, 10), (512, 384))


def test_prediction_runs_torchvision_module_and_training_the_fast_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model("lite0_cascade_fast", pretrained=False)
    assert isinstance(model.roi_heads.box_roi_pool, FastMultiScaleRoIAlign)
    calls: list[str] = []
    original = FastMultiScaleRoIAlign.__mro__[1].forward

    def spy(self: MultiScaleRoIAlign, *args: object) -> Tensor:
        calls.append("torchvision")
        return original(self, *args)

    monkeypatch.setattr(MultiScaleRoIAlign, "forward", spy)
    image = [torch.rand(3, 256, 256)]
    model.eval()
    with torch.no_grad():
        model(image)
    assert calls == ["torchvision"] * 3  # one per cascade stage
    model.train()
    target = [{"boxes": torch.tensor([[40.0, 50.0, 200.0, 70.0]]),
               "labels": torch.tensor([1])}]
    losses = model(image, target)
    sum(losses.values()).backward()
    assert calls == ["torchvision"] * 3  # training took the fast path
    assert model.roi_heads.box_heads[0].fc6.weight.grad is not None
