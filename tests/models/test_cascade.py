"""The Cascade R-CNN seed preset: settings equal the MMDetection config; stage mechanics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from scratchdet.models.cascade import CascadeRoIHeads
from scratchdet.models.factory import build_model

# MMDetection cascade_rcnn_x101_32x4d_fpn (the seed's config).
SEED_STDS = [(0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067)]
# With one class: FrozenBatchNorm2d affine terms are buffers here (MMDetection counts them).
SEED_PARAMETERS = 87_634_657


@pytest.fixture(scope="module")
def seed() -> nn.Module:
    return build_model("cascade_rcnn_x101_32x4d_fpn")


def test_stage_settings_equal_seed_config(seed: nn.Module) -> None:
    heads = seed.roi_heads
    assert heads.num_stages == 3
    assert heads.iou_thresholds == (0.5, 0.6, 0.7)
    assert heads.stage_loss_weights == (1.0, 0.5, 0.25)
    assert [list(s) for s in heads.box_coder_stds] == [list(s) for s in SEED_STDS]
    for coder, std in zip(heads.box_coders, SEED_STDS, strict=True):
        assert coder.weights == pytest.approx(tuple(1 / v for v in std))
    for matcher, iou in zip(heads.matchers, (0.5, 0.6, 0.7), strict=True):
        assert (matcher.low_threshold, matcher.high_threshold) == (iou, iou)
        assert not matcher.allow_low_quality_matches
    assert (heads.batch_size_per_image, heads.positive_fraction) == (512, 0.25)
    assert (heads.score_thresh, heads.nms_thresh, heads.detections_per_img) == (0.05, 0.5, 100)
    assert [h.fc6.out_features for h in heads.box_heads] == [1024] * 3
    assert [p.bbox_pred.out_features for p in heads.box_predictors] == [4] * 3
    pool = heads.box_roi_pool
    assert (pool.output_size, pool.sampling_ratio) == ((7, 7), 2)


def test_rpn_backbone_and_transform_equal_seed_config(seed: nn.Module) -> None:
    rpn = seed.rpn
    assert rpn.fg_bg_sampler.batch_size_per_image == 256
    assert rpn.fg_bg_sampler.positive_fraction == 0.5
    assert rpn._post_nms_top_n["testing"] == 1000 and rpn.nms_thresh == 0.7
    assert rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,), (512,))
    assert rpn.anchor_generator.aspect_ratios == ((0.5, 1.0, 2.0),) * 5
    assert seed.backbone.out_channels == 256
    body = seed.backbone.body
    assert [len(getattr(body, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    assert body.layer2[0].conv2.groups == 32 and body.layer1[0].conv2.out_channels == 128
    assert not any(p.requires_grad for p in body.layer1.parameters())
    assert all(p.requires_grad for p in body.layer2.parameters())
    assert (seed.transform.min_size, seed.transform.max_size) == ((800,), 1333)


def test_parameter_count(seed: nn.Module) -> None:
    count = sum(p.numel() for p in seed.parameters())
    assert abs(count - SEED_PARAMETERS) / SEED_PARAMETERS < 0.01


def test_stage_sequences_must_have_equal_length() -> None:
    with pytest.raises(ValueError, match="iou_thresholds"):
        CascadeRoIHeads(nn.Identity(), [nn.Identity()] * 2, [nn.Identity()] * 2,
                        (0.5,), SEED_STDS[:2], (1.0, 0.5))


class _RecordingPool(nn.Module):
    """Stands in for RoIAlign: one zero feature per RoI; records how many RoIs each call got."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: list[int] = []

    def forward(self, features: dict, boxes: list[Tensor], shapes: list) -> Tensor:
        self.counts.append(sum(len(b) for b in boxes))
        return torch.zeros(sum(len(b) for b in boxes), 1)


class _FixedPredictor(nn.Module):
    """Logits (0, ``logit``) and a constant x-shift of ``shift`` (in the stage's delta units)."""

    def __init__(self, logit: float, shift: float) -> None:
        super().__init__()
        self.logit, self.shift = logit, shift

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits = torch.tensor([[0.0, self.logit]]).repeat(len(x), 1)
        deltas = torch.tensor([[self.shift, 0.0, 0.0, 0.0]]).repeat(len(x), 1)
        return logits, deltas


def _toy_heads(pool: nn.Module) -> CascadeRoIHeads:
    # Delta 1/std[0] * 0.1 shifts a box by 0.1 of its width at every stage.
    predictors = [_FixedPredictor(logit, 0.1 / std[0])
                  for logit, std in zip((0.0, 3.0, 6.0), SEED_STDS, strict=True)]
    return CascadeRoIHeads(pool, [nn.Identity()] * 3, predictors, (0.5, 0.6, 0.7), SEED_STDS,
                           (1.0, 0.5, 0.25), score_thresh=0.05)


def test_test_time_averages_stage_logits_and_chains_boxes() -> None:
    heads = _toy_heads(_RecordingPool()).eval()
    detections, _ = heads({}, [torch.tensor([[10.0, 10.0, 50.0, 50.0]])], [(100, 100)])
    # Mean logit (0 + 3 + 6) / 3 = 3 -> softmax(0, 3)[1]; each stage moved the box by 4 px.
    assert detections[0]["scores"].tolist() == pytest.approx([1 / (1 + math.exp(-3.0))])
    assert detections[0]["boxes"].tolist() == [pytest.approx([22.0, 10.0, 62.0, 50.0], abs=1e-3)]
    assert detections[0]["labels"].tolist() == [1]


def test_training_adds_gt_each_stage_and_drops_gt_duplicates() -> None:
    pool = _RecordingPool()
    heads = _toy_heads(pool).train()
    proposals = [torch.tensor([[0.0, 0.0, 30.0, 30.0]] * 10) + torch.arange(10.0)[:, None]]
    targets = [{"boxes": torch.tensor([[5.0, 5.0, 40.0, 35.0], [50.0, 50.0, 90.0, 70.0]]),
                "labels": torch.tensor([1, 1])}]
    _, losses = heads({}, proposals, [(100, 100)], targets)
    # 10 proposals + 2 GT at every stage; 14 would mean GT-derived boxes were passed on.
    assert pool.counts == [12, 12, 12]
    assert sorted(losses) == sorted(f"loss_{k}_s{s}" for k in ("classifier", "box_reg")
                                    for s in range(3))
    # Stage weights scale the (identical, constant-logit) stage-0 classifier loss.
    assert float(losses["loss_classifier_s0"]) > 0


def test_lite_cascade_preset_is_the_fast_model_with_three_stages() -> None:
    fast = build_model("lite0_fpn_fast", pretrained=False)
    cascade = build_model("lite0_cascade_fast", pretrained=False)
    heads = cascade.roi_heads
    assert isinstance(heads, CascadeRoIHeads) and heads.num_stages == 3
    assert heads.iou_thresholds == (0.5, 0.6, 0.7)
    assert heads.stage_loss_weights == (1.0, 0.5, 0.25)
    assert [h.fc6.in_features for h in heads.box_heads] == [64 * 49] * 3
    assert [h.fc7.out_features for h in heads.box_heads] == [256] * 3
    assert (heads.batch_size_per_image, heads.score_thresh, heads.nms_thresh) == (128, 0.05, 0.5)
    # the same backbone, FPN and RPN: only the box stages differ
    shared = {k: v.shape for k, v in fast.state_dict().items() if not k.startswith("roi_heads")}
    assert shared == {k: v.shape for k, v in cascade.state_dict().items()
                      if not k.startswith("roi_heads")}
