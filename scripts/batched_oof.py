"""Batched prediction (``inference.gpu_batch``) against the single-photo predictor, out of fold.

    python scripts/batched_oof.py outputs/cv-s111 [outputs/cv-s7 ...] [--batch 8] [--sample DIR]

For each crossval run: every fold's model predicts its held-out photos once photo by photo
(``TiledPredictor``, as ``crossval`` does) and once in batches (``BatchedPredictor`` on the
CPU: inputs of a batch widened into the photo to one shape), both with the model's own
settings; prints AP50 all/white/red, AP and part AUROC of each, and how many boxes >= 0.05
match (IoU >= 0.9, score within 0.05). The same code runs on a GPU with ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from scratchdet.evaluation import evaluate
from scratchdet.inference.gpu_batch import BatchedPredictor
from scratchdet.inference.load import build_predictor, load_model
from scratchdet.inference.run import coco_results
from scratchdet.inference.torch_runtime import load_torch_model


def _matches(a: np.ndarray, sa: np.ndarray, b: np.ndarray, sb: np.ndarray) -> int:
    if not len(a) or not len(b):
        return 0
    iou = box_iou(torch.as_tensor(a), torch.as_tensor(b)).numpy()
    best = iou.argmax(1)
    return int(sum(iou[i, j] >= 0.9 and abs(sa[i] - sb[j]) < 0.05 for i, j in enumerate(best)))


def oof_row(name: str, gt: dict, dets: list[dict]) -> str:
    """One line: AP50 all/white/red, AP and part AUROC of ``dets`` against ``gt``."""
    r = evaluate(gt, dets, group_by="colour", part_level=True)
    ap50 = [r.value("AP", "0.50", group=g) for g in ("all", "white", "red")]
    auroc = r.part_level.groups["all"].auroc if r.part_level else float("nan")
    return f"  {name:<8} " + " ".join(f"{v:.3f}" for v in ap50) + \
        f"  AP {r.value('AP'):.3f}  AUROC {auroc:.3f}"


def run(folder: Path, sample: Path, batch: int, device: str) -> None:
    gt_all = json.loads((folder / "train_val.json").read_text())
    single_dets, batched_dets, matched, total = [], [], 0, 0
    for fold_dir in sorted(d for d in folder.glob("fold[0-9]*") if d.is_dir()):
        held = json.loads((fold_dir / "heldout.json").read_text())
        model_path = fold_dir / "runs" / "model" / "model.pt"
        loaded = load_model(model_path, "torch", device)
        single = build_predictor(loaded, score_threshold=0.0)  # as crossval predicts
        cats = loaded.spec.category_ids
        batched = BatchedPredictor(single, load_torch_model(model_path)[0], device, batch)
        photos = [sample / im["file_name"] for im in held["images"]]
        ids = {str(sample / im["file_name"]): im["id"] for im in held["images"]}
        for path, pred in batched.predict_many(photos):
            if isinstance(pred, Exception):
                raise pred
            one = single.predict(path).detections
            keep = one.scores >= 0.05
            total += int(keep.sum())
            matched += _matches(one.boxes[keep], one.scores[keep], pred.detections.boxes,
                                pred.detections.scores)
            single_dets += coco_results(one, ids[str(path)], cats)
            batched_dets += coco_results(pred.detections, ids[str(path)], cats)
    print(f"{folder} (batch {batch}, {device}): AP50 all/white/red")
    print(oof_row("single", gt_all, single_dets))
    print(oof_row("batched", gt_all, batched_dets))
    print(f"  boxes >= 0.05 of the single path matched in the batched one: {matched}/{total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sample", type=Path,
                        default=Path(os.environ.get("SCRATCHDET_SAMPLE", "data/scratch-sample")))
    args = parser.parse_args()
    for folder in args.runs:
        run(folder, args.sample, args.batch, args.device)


if __name__ == "__main__":
    main()
