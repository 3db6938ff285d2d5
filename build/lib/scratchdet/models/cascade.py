"""Cascade R-CNN box heads (Cai & Vasconcelos 2018) as a drop-in for torchvision's ``RoIHeads``.

Stage ``s`` pools RoIs, runs its own box head and class-agnostic predictor, and regresses boxes
with its own ``BoxCoder`` (weights = 1 / std). In training every stage adds the ground truth to
its proposals, matches them with its own IoU threshold, samples ``batch_size_per_image`` RoIs
and passes its refined, non-GT RoIs to the next stage (as MMDetection 2.x does). At test time
the class logits of all stages are averaged before the softmax (MMDetection 2.x) and the boxes
are the last stage's refinement.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes

Std4 = tuple[float, float, float, float]

# The seed's (MMDetection cascade_rcnn_x101_32x4d_fpn) per-stage settings.
SEED_IOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7)
SEED_STAGE_LOSS_WEIGHTS: tuple[float, ...] = (1.0, 0.5, 0.25)
SEED_BOX_CODER_STDS: tuple[Std4, ...] = (
    (0.1, 0.1, 0.2, 0.2),
    (0.05, 0.05, 0.1, 0.1),
    (0.033, 0.033, 0.067, 0.067),
)


class CascadePredictor(nn.Module):
    """Class scores (``num_classes + 1``, background at index 0) and 4 class-agnostic deltas."""

    def __init__(self, in_channels: int, num_classes_with_bg: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes_with_bg)
        self.bbox_pred = nn.Linear(in_channels, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


class CascadeRoIHeads(nn.Module):
    """Cascade of box heads with explicit, length-checked per-stage settings.

    Args:
        box_roi_pool: RoI feature extractor shared by all stages (e.g. ``MultiScaleRoIAlign``).
        box_heads: one feature head per stage (e.g. ``TwoMLPHead``).
        box_predictors: one :class:`CascadePredictor` per stage.
        iou_thresholds: per-stage IoU for a positive match (negatives below it).
        box_coder_stds: per-stage delta stds; the ``BoxCoder`` weights are their inverses.
        stage_loss_weights: per-stage multipliers of both losses.
        batch_size_per_image, positive_fraction: the RoI sampler of every stage.
        smooth_l1_beta: box-regression loss (MMDetection's cascade uses 1.0).
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_heads: Sequence[nn.Module],
        box_predictors: Sequence[nn.Module],
        iou_thresholds: Sequence[float],
        box_coder_stds: Sequence[Std4],
        stage_loss_weights: Sequence[float],
        *,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        smooth_l1_beta: float = 1.0,
    ) -> None:
        super().__init__()
        lengths = {
            "box_heads": len(box_heads), "box_predictors": len(box_predictors),
            "iou_thresholds": len(iou_thresholds), "box_coder_stds": len(box_coder_stds),
            "stage_loss_weights": len(stage_loss_weights),
        }
        if len(set(lengths.values())) != 1 or not box_heads:
            raise ValueError(f"per-stage sequences must have one equal, non-zero length: {lengths}")
        self.box_roi_pool = box_roi_pool
        self.box_heads = nn.ModuleList(box_heads)
        self.box_predictors = nn.ModuleList(box_predictors)
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        self.box_coder_stds = tuple(tuple(float(v) for v in s) for s in box_coder_stds)
        self.stage_loss_weights = tuple(float(w) for w in stage_loss_weights)
        self.box_coders = [BoxCoder(tuple(1.0 / v for v in s)) for s in self.box_coder_stds]
        self.matchers = [Matcher(t, t, allow_low_quality_matches=False)
                         for t in self.iou_thresholds]
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.smooth_l1_beta = smooth_l1_beta

    @property
    def num_stages(self) -> int:
        return len(self.box_heads)

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Same contract as torchvision's ``RoIHeads.forward``."""
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode")
            return [], self._losses(features, proposals, image_shapes, targets)
        return self._detect(features, proposals, image_shapes), {}

    def _run_stage(
        self, stage: int, features: dict[str, Tensor], boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> tuple[Tensor, Tensor]:
        x = self.box_roi_pool(features, boxes, image_shapes)
        return self.box_predictors[stage](self.box_heads[stage](x))

    def _refine(
        self, stage: int, deltas: Tensor, boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> list[Tensor]:
        decoded = self.box_coders[stage].decode_single(deltas, torch.cat(boxes))
        per_image = decoded.split([b.shape[0] for b in boxes])  # shape, not len: traced (ONNX)
        return [clip_boxes_to_image(b, s) for b, s in zip(per_image, image_shapes, strict=True)]

    def _sample_image(
        self, stage: int, proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Labels (0 = background) and matched GT boxes for proposals+GT of one image."""
        if gt_boxes.numel() == 0:
            labels = torch.zeros(len(proposals), dtype=torch.int64, device=proposals.device)
            return labels, torch.zeros_like(proposals), labels.bool()
        boxes = torch.cat([proposals, gt_boxes])
        matched = self.matchers[stage](box_iou(gt_boxes, boxes))
        labels = gt_labels[matched.clamp(min=0)].to(torch.int64)
        labels[matched == Matcher.BELOW_LOW_THRESHOLD] = 0
        labels[matched == Matcher.BETWEEN_THRESHOLDS] = -1
        is_gt = torch.arange(len(boxes), device=boxes.device) >= len(proposals)
        return labels, gt_boxes[matched.clamp(min=0)], is_gt

    def _losses(
        self, features: dict[str, Tensor], proposals: list[Tensor],
        image_shapes: list[tuple[int, int]], targets: list[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        for stage in range(self.num_stages):
            rois, labels, box_targets, from_gt = self._sample(stage, proposals, targets)
            logits, deltas = self._run_stage(stage, features, rois, image_shapes)
            all_labels, all_targets = torch.cat(labels), torch.cat(box_targets)
            cls_loss = F.cross_entropy(logits, all_labels)
            positive = all_labels > 0
            box_loss = F.smooth_l1_loss(
                deltas[positive], all_targets[positive], beta=self.smooth_l1_beta, reduction="sum"
            ) / max(all_labels.numel(), 1)
            weight = self.stage_loss_weights[stage]
            losses[f"loss_classifier_s{stage}"] = weight * cls_loss
            losses[f"loss_box_reg_s{stage}"] = weight * box_loss
            if stage + 1 < self.num_stages:
                with torch.no_grad():
                    refined = self._refine(stage, deltas.detach(), rois, image_shapes)
                proposals = [b[~g] for b, g in zip(refined, from_gt, strict=True)]
        return losses

    def _sample(
        self, stage: int, proposals: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """Per image: sampled RoIs, their labels, regression targets and a from-GT mask."""
        matched = [self._sample_image(stage, p, t["boxes"], t["labels"])
                   for p, t in zip(proposals, targets, strict=True)]
        pos_masks, neg_masks = self.sampler([m[0] for m in matched])
        rois, labels, box_targets, from_gt = [], [], [], []
        for proposal, target, (lab, gt, is_gt), pos, neg in zip(
            proposals, targets, matched, pos_masks, neg_masks, strict=True
        ):
            boxes = torch.cat([proposal, target["boxes"]]) if target["boxes"].numel() else proposal
            keep = torch.where(pos | neg)[0]
            rois.append(boxes[keep])
            labels.append(lab[keep])
            box_targets.append(self.box_coders[stage].encode_single(gt[keep], boxes[keep]))
            from_gt.append(is_gt[keep])
        return rois, labels, box_targets, from_gt

    def _detect(
        self, features: dict[str, Tensor], proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        boxes = proposals
        logit_sum: Tensor | None = None
        for stage in range(self.num_stages):
            logits, deltas = self._run_stage(stage, features, boxes, image_shapes)
            logit_sum = logits if logit_sum is None else logit_sum + logits
            boxes = self._refine(stage, deltas, boxes, image_shapes)
        assert logit_sum is not None
        scores = F.softmax(logit_sum / self.num_stages, dim=-1).split([b.shape[0] for b in boxes])
        return [self._postprocess(b, s) for b, s in zip(boxes, scores, strict=True)]

    def _postprocess(self, boxes: Tensor, scores: Tensor) -> dict[str, Tensor]:
        """Score threshold, per-class NMS and top-k for one image (class-agnostic boxes)."""
        num_fg = scores.shape[1] - 1
        labels = torch.arange(1, num_fg + 1, device=scores.device).repeat(boxes.shape[0])
        boxes = boxes.repeat_interleave(num_fg, dim=0)
        scores = scores[:, 1:].reshape(-1)
        keep = torch.where(scores > self.score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = remove_small_boxes(boxes, min_size=1e-2)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
        # torchvision's key order (a traced graph's outputs follow it)
        return {"boxes": boxes[keep], "labels": labels[keep], "scores": scores[keep]}
