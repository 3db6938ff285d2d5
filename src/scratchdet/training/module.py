"""The ``LightningModule``: losses in training, COCO detections + the project's evaluator in
validation, SGD with the seed's per-iteration schedule.

The network itself is a plain ``nn.Module`` from :func:`build_detector`; checkpoints also carry
the model spec (``checkpoint["scratchdet"]``, :mod:`scratchdet.artifact`), so that
:func:`scratchdet.inference.torch_runtime.load_torch_model` rebuilds it without Lightning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from scratchdet.artifact import ARTIFACT_KEY, checkpoint_entry
from scratchdet.evaluation import evaluate
from scratchdet.inference.load import build_predictor, from_module
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.models.bn_calibration import calibrate_batch_norms
from scratchdet.structures import Detections
from scratchdet.training.checkpoint import spec_for
from scratchdet.training.config import TrainConfig
from scratchdet.training.datamodule import Batch
from scratchdet.training.detector import build_detector
from scratchdet.training.schedule import lr_at

#: The metric the best checkpoint is chosen by (COCO bbox mAP, IoU 0.50:0.95) and its partner.
MONITOR = "val/AP"
AP50 = "val/AP50"


def to_coco_results(
    output: Detections,
    image_id: int,
    scale: tuple[float, float],
    categories: list[int],
) -> list[dict[str, Any]]:
    """Detections (xyxy in given pixels) -> COCO results ``[x, y, w, h]`` in original pixels.

    ``categories[label - 1]`` is the COCO category id of label ``label``.
    """
    boxes = output.boxes / np.array([scale[0], scale[1], scale[0], scale[1]], dtype=np.float32)
    out = []
    for box, score, label in zip(
        boxes.tolist(), output.scores.tolist(), output.labels.tolist(), strict=True
    ):
        x1, y1, x2, y2 = box
        out.append({
            "image_id": image_id,
            "category_id": categories[int(label) - 1],
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(score),
        })
    return out


def _as_detections(output: dict[str, torch.Tensor]) -> Detections:
    return Detections.from_arrays(output["boxes"].detach().float().cpu().numpy(),
                                  output["scores"].detach().cpu().numpy(),
                                  output["labels"].detach().cpu().numpy())


class DetectionModule(L.LightningModule):
    """Trains the detector named by ``config["model"]`` for ``class_names``."""

    def __init__(
        self, config: dict[str, Any], class_names: list[str], category_ids: list[int]
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = TrainConfig.model_validate(config)
        self.class_names = list(class_names)
        self.category_ids = list(category_ids)
        self.model = build_detector(self.cfg.model, len(class_names), self.cfg.model_overrides)
        self._val_results: list[tuple[int, list[dict[str, Any]]]] = []

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images, targets, _ = batch
        losses = self.model(images, targets)
        loss = sum(losses.values())
        n = len(images)
        for key, value in losses.items():
            self.log(f"train/{key}", value, batch_size=n)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        return loss

    def on_train_start(self) -> None:
        if self.trainer.global_step > 0:  # resumed: the checkpoint holds the statistics
            return
        datamodule = self.trainer.datamodule  # type: ignore[attr-defined]
        seen = calibrate_domain_statistics(self.model, datamodule.train_dataloader,
                                           self.cfg.bn_calibration_batches)
        if seen:
            rank_zero_info(f"batch-norm statistics (bn_stats: domain) estimated on {seen} "
                           "training batches")

    def on_train_epoch_start(self) -> None:
        dataset = self.trainer.train_dataloader.dataset  # type: ignore[union-attr]
        if hasattr(dataset, "set_epoch"):  # tiles: different draws each epoch
            dataset.set_epoch(self.current_epoch)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        images, _, metas = batch
        if self.cfg.input_mode == "tiles":
            outputs = [self._tiler().predict(m["path"]).detections for m in metas]
        else:
            outputs = [_as_detections(out) for out in self.model(images)]
        for out, meta in zip(outputs, metas, strict=True):
            dets = to_coco_results(out, meta["image_id"], meta["scale"], self.category_ids)
            self._val_results.append((meta["image_id"], dets))

    def on_validation_epoch_start(self) -> None:
        self._val_results = []

    def _tiler(self) -> TiledPredictor:
        """The predictor users get for this model (the default fast path), scores from 0."""
        spec = spec_for(self.cfg, self.class_names, self.category_ids)
        loaded = from_module(self.model, spec, self.device)
        return build_predictor(loaded, batch_size=self.cfg.batch_size, score_threshold=0.0)

    def on_validation_epoch_end(self) -> None:
        results = _gather(self._val_results)
        self._val_results = []
        if self.trainer.sanity_checking:
            return
        seen: dict[int, list[dict[str, Any]]] = {}
        for image_id, dets in results:  # the distributed sampler repeats photos to even out
            seen.setdefault(image_id, dets)
        detections = [d for dets in seen.values() for d in dets]
        gt = self.trainer.datamodule.val_data  # type: ignore[attr-defined]
        report = evaluate(gt, detections, group_by="colour")
        ap = _finite(report.value("AP", "0.50:0.95", band="all", group="all"))
        ap50 = _finite(report.value("AP", "0.50", band="all", group="all"))
        self.log(MONITOR, ap, prog_bar=True, sync_dist=False, rank_zero_only=False)
        self.log(AP50, ap50, prog_bar=True, sync_dist=False, rank_zero_only=False)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        total = int(self.trainer.estimated_stepping_batches)

        def factor(step: int) -> float:
            lr = lr_at(step, total, cfg.lr, cfg.min_lr, cfg.warmup_iters, cfg.warmup_ratio)
            return lr / cfg.lr

        sched = LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        spec = spec_for(self.cfg, self.class_names, self.category_ids)
        checkpoint[ARTIFACT_KEY] = checkpoint_entry(spec)


def calibrate_domain_statistics(
    model: nn.Module, loader: Callable[[], Iterable[Batch]], batches: int
) -> int:
    """Estimate the batch-norm statistics of every backbone of ``model`` that asks for it
    (``needs_calibration``: ``bn_stats="domain"``) on the first ``batches`` of a fresh
    ``loader()``, as the detector's transform feeds them to it; returns the batches used
    (0: none asked, and no loader built). Under DDP each rank estimates on its own batches and
    DDP's buffer broadcast hands rank 0's statistics to all at the first forward pass."""
    bodies = [m for m in model.modules() if getattr(m, "needs_calibration", False)]
    if not bodies:
        return 0
    device = next(model.parameters()).device
    inputs = []
    with torch.no_grad():
        for (images, _, _), _ in zip(loader(), range(batches), strict=False):
            inputs.append(model.transform([im.to(device) for im in images])[0].tensors)
    for body in bodies:
        calibrate_batch_norms(body, inputs)
    return len(inputs)


def _finite(value: float | None) -> float:
    """Metric for logging; an undefined metric (no GT, -1 or None) is logged as 0."""
    if value is None or value != value or value < 0:
        return 0.0
    return float(value)


def _gather(items: list[Any]) -> list[Any]:
    """Everything every rank collected (all ranks get the same list)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items
    parts: list[list[Any] | None] = [None] * dist.get_world_size()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist.all_gather_object(parts, items)
    return [x for part in parts for x in (part or [])]
