"""Every preset builds, trains (finite losses) and predicts in torchvision's format."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from scratchdet.models.factory import DEFAULT_CPU_MODEL, PRESETS, build_model

# Small settings so the big presets stay fast on 2 CPU cores.
SMALL: dict[str, dict[str, object]] = {
    "lite0_fpn_fast": {"pretrained": False},
    "lite1_fpn_fast": {"pretrained": False},
    "lite2_fpn_fast": {"pretrained": False},
    "lite0_cascade_fast": {"pretrained": False},
    "lite1_cascade_fast": {"pretrained": False},
    "lite0_fcos": {"pretrained": False},
    "faster_rcnn_r50_fpn": {"min_size": 128, "max_size": 160},
    "cascade_rcnn_x101_32x4d_fpn": {"min_size": 128, "max_size": 160},
}


def _shrink(model: nn.Module) -> nn.Module:
    """Fewer proposals/RoIs for the R-CNN presets (only the test's speed changes)."""
    rpn = getattr(model, "rpn", None)
    if rpn is not None:
        rpn._pre_nms_top_n = {"training": 200, "testing": 100}
        rpn._post_nms_top_n = {"training": 100, "testing": 50}
        sampler = getattr(model.roi_heads, "sampler", None) or model.roi_heads.fg_bg_sampler
        sampler.batch_size_per_image = 64
    return model


@pytest.fixture(scope="module", params=sorted(PRESETS))
def model(request: pytest.FixtureRequest) -> nn.Module:
    torch.manual_seed(0)
    return _shrink(build_model(request.param, **SMALL[request.param]))


def test_presets_are_covered() -> None:
    assert set(SMALL) == set(PRESETS)
    assert DEFAULT_CPU_MODEL in PRESETS


def test_train_mode_gives_finite_scalar_losses(
    model: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]]
) -> None:
    model.train()
    losses = model(images, targets)
    assert losses and all(v.ndim == 0 and math.isfinite(float(v.detach())) for v in losses.values())
    total = sum(losses.values())
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    model.zero_grad(set_to_none=True)


def test_no_boxes_gives_zero_box_regression_loss(
    model: nn.Module, images: list[Tensor], no_box_targets: list[dict[str, Tensor]]
) -> None:
    model.train()
    losses = model(images, no_box_targets)
    box_keys = [k for k in losses if "box" in k or "regression" in k]
    assert box_keys, losses.keys()
    for key in box_keys:
        assert float(losses[key].detach()) == 0.0, key
    assert all(math.isfinite(float(v.detach())) for v in losses.values())


def test_eval_mode_output_format(model: nn.Module, images: list[Tensor]) -> None:
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    assert len(outputs) == len(images)
    for out in outputs:
        assert set(out) == {"boxes", "scores", "labels"}
        count = len(out["scores"])
        assert out["boxes"].shape == (count, 4) and out["boxes"].dtype == torch.float32
        assert out["labels"].dtype == torch.int64 and out["scores"].dtype == torch.float32
        assert count <= 100
        if count:
            assert out["labels"].min() >= 1 and out["scores"].min() > 0.0
            assert (out["boxes"][:, 2:] >= out["boxes"][:, :2]).all()
            assert out["boxes"][:, 2].max() <= 320 and out["boxes"][:, 3].max() <= 256


def test_unknown_preset_lists_presets() -> None:
    with pytest.raises(ValueError, match="lite0_fpn_fast") as info:
        build_model("lite0_fpn_fats")
    assert "did you mean 'lite0_fpn_fast'" in str(info.value)
    for name in PRESETS:
        assert name in str(info.value)


def test_unknown_override_lists_accepted() -> None:
    with pytest.raises(ValueError, match=r"accepted: .*score_thresh"):
        build_model("lite0_fpn_fast", pretrained=False, scor_thresh=0.1)


def test_builtin_weights_only_for_lite0() -> None:
    with pytest.raises(ValueError, match="nothing is downloaded"):
        build_model("faster_rcnn_r50_fpn", pretrained=True)


def test_resize_off_keeps_native_size_and_pads_to_stride() -> None:
    model = build_model("lite0_fpn_fast", pretrained=False).eval()
    batch, _ = model.transform([torch.rand(3, 250, 330)])
    assert batch.image_sizes == [(250, 330)]
    assert tuple(batch.tensors.shape) == (1, 3, 256, 352)
    resized = build_model("lite0_fpn_fast", pretrained=False, resize=True, min_size=125,
                          max_size=400).eval()
    batch, _ = resized.transform([torch.rand(3, 250, 330)])
    assert batch.image_sizes == [(125, 165)]


def test_overrides_reach_the_model() -> None:
    model = build_model("lite0_fpn_fast", pretrained=False, score_thresh=0.3, nms_thresh=0.4,
                        detections_per_img=7, fpn_channels=32)
    assert model.roi_heads.score_thresh == 0.3 and model.roi_heads.nms_thresh == 0.4
    assert model.roi_heads.detections_per_img == 7 and model.backbone.out_channels == 32


def test_anchor_overrides_reach_the_rpn() -> None:
    """Sizes per FPN level and ratios (as a YAML override gives them: lists) set the anchors;
    the RPN head predicts one objectness per anchor; unequal counts per level are refused."""
    sizes, ratios = [[24, 32, 48], [64, 96, 128], [160, 224, 320]], [0.25, 0.5, 1.0, 2.0, 4.0]
    model = build_model("lite1_cascade_fast", pretrained=False, anchor_sizes=sizes,
                        anchor_ratios=ratios)
    generator = model.rpn.anchor_generator
    assert generator.sizes == ((24, 32, 48), (64, 96, 128), (160, 224, 320))
    assert generator.num_anchors_per_location() == [15, 15, 15]
    assert model.rpn.head.cls_logits.out_channels == 15
    default = build_model("lite1_cascade_fast", pretrained=False)
    assert default.rpn.head.cls_logits.out_channels == 6
    with pytest.raises(ValueError, match="same count per level"):
        build_model("lite0_fpn_fast", pretrained=False, anchor_sizes=[[24], [64, 96], [144]])
