"""Rules for nested boxes, tried on the out-of-fold detections of a crossval run (no model).

    python scripts/nested_sweep.py outputs/cv [RULE ...]   (RULE as crossval --nested)

The rule (:func:`scratchdet.geometry.nested.refine_nested`) acts on the merged detections of
each photo, so applying it to ``oof.bbox.json`` (scores from 0) is what ``crossval --reuse RUN
--nested RULE`` computes, up to the 0.01 px rounding of the stored boxes; confirm a winner
with that command. Prints AP50 all/white/red, AP, part AUROC and the box counts at 0.5.
The run's own rule already acts on its ``oof.bbox.json`` (the config's ``nested``: ``keep``
in ``cpu_fast.yaml`` since the cascade, ``decay:0.5:0.5`` before): sweep a run made with
``crossval --nested keep``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from scratchdet.data.split import subset_coco
from scratchdet.evaluation import evaluate
from scratchdet.evaluation.box_stats import box_stats
from scratchdet.geometry.nested import parse_nested, refine_nested

RULES = ("keep", "suppress:0.5", "suppress:0.8", "decay:0.5:0.5", "decay:0.8:0.5",
         "union:0.5", "union:0.8", "wbf:0.5", "wbf:0.8")


def apply(dets: list[dict], rule: str) -> list[dict]:
    mode, ios, decay = parse_nested(rule)
    by_image: dict[int, list[dict]] = defaultdict(list)
    for d in dets:
        by_image[d["image_id"]].append(d)
    out = []
    for image_id, ds in by_image.items():
        xywh = np.array([d["bbox"] for d in ds], dtype=np.float64)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        scores = np.array([d["score"] for d in ds])
        labels = np.array([d["category_id"] for d in ds])
        b, s, lab = refine_nested(boxes, scores, labels, mode, ios, decay)
        out += [{"image_id": image_id, "category_id": int(c), "score": float(sc),
                 "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]}
                for (x0, y0, x1, y1), sc, c in zip(b, s, lab, strict=True)]
    return out


def load_run(run: Path) -> tuple[dict, list[dict], dict[int, int]]:
    """A finished crossval run: ground truth of the folds it ran, its ``oof.bbox.json``, and
    the fold of each of those photos (by image id)."""
    coco = json.loads((run / "train_val.json").read_text())
    fold_of = json.loads((run / "folds.json").read_text())  # file name -> fold
    done = {f["fold"] for f in json.loads((run / "crossval.json").read_text())["folds"]}
    fold_of_id = {im["id"]: fold_of[im["file_name"]] for im in coco["images"]
                  if fold_of[im["file_name"]] in done}
    gt = subset_coco(coco, set(fold_of_id))
    return gt, json.loads((run / "oof.bbox.json").read_text()), fold_of_id


def main(run: Path, rules: list[str]) -> None:
    gt, dets, _ = load_run(run)
    print("rule            AP50 all  white   red     AP  AUROC | per scratch med/max, missed,"
          " unmatched, false/clean @0.5")
    for rule in rules:
        got = apply(dets, rule)
        r = evaluate(gt, got, group_by="colour", part_level=True)
        ap50 = [r.value("AP", "0.50", group=g) for g in ("all", "white", "red")]
        auroc = r.part_level.groups["all"].auroc if r.part_level else float("nan")
        b = box_stats(gt, got, 0.5)
        print(f"{rule:<15} " + "  ".join(f"{v:6.3f}" for v in ap50)
              + f"  {r.value('AP'):.3f}  {auroc:.3f} | {b.median_matched:g}/{b.max_matched}, "
              f"{b.missed}/{len(b.matched_per_gt)}, {b.unmatched_on_scratched}, "
              f"{b.mean_false_per_clean:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or list(RULES))
