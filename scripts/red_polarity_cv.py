"""Red parts seen in the white parts' polarity, measured on a crossval run's fold models.

    python scripts/red_polarity_cv.py outputs/cv-s111 [--sample DIR] [--mode MODE]

On red parts a scratch is lighter than the paint and the moulded grooves darker; on white
parts (41 of the 45 labelled boxes) a scratch is darker than the paint. MODE ``invert_g`` feeds
each held-out red photo to its fold's model as 255 - its green channel (paint light, scratch
dark, grooves light), in all three channels; ``none`` re-predicts unchanged (must reproduce
``oof.bbox.json``). White photos keep their out-of-fold detections. Prints the evaluator's
AP50 all/white/red, AP, part AUROC and the verdict counts, before and after.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from scratchdet.data.split import subset_coco
from scratchdet.evaluation import evaluate
from scratchdet.imaging import decode_at_scale
from scratchdet.inference.load import build_predictor, load_model


def polarity(image: Image.Image, mode: str) -> Image.Image:
    if mode == "none":
        return image
    g = 255 - np.asarray(image)[:, :, 1]
    return Image.fromarray(np.repeat(g[:, :, None], 3, axis=2))


def summary(gt: dict, dets: list[dict]) -> str:
    r = evaluate(gt, dets, group_by="colour", part_level=True, target_recall=0.95)
    part = r.part_level.groups["all"]
    pick = part.target.point if part.target else None
    best = min((p.rejected for p in part.curve if p.caught >= part.scratched - 1), default=-1)
    red = r.part_level.groups.get("red")
    return ("AP50 " + " / ".join(f"{r.value('AP', '0.50', group=g):.3f}"
                                 for g in ("all", "white", "red"))
            + f", AP {r.value('AP'):.3f}, AUROC {part.auroc:.3f}"
            + f" (red {red.auroc if red else 0:.3f})"
            + (f", pick {pick.threshold:.3f}: {pick.caught}/{pick.scratched} caught, "
               f"{pick.rejected}/{pick.clean} clean rejected" if pick else ", no pick")
            + f", best at >= {part.scratched - 1} caught: {best} rejected")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--mode", default="invert_g", choices=["none", "invert_g"])
    parser.add_argument("--sample", type=Path, default=Path(os.environ.get(
        "SCRATCHDET_SAMPLE", "data/scratch-sample")))
    args = parser.parse_args()
    coco = json.loads((args.run / "train_val.json").read_text())
    fold_of = json.loads((args.run / "folds.json").read_text())
    models = [f["model"] for f in json.loads((args.run / "crossval.json").read_text())["folds"]]
    oof = json.loads((args.run / "oof.bbox.json").read_text())
    red = {im["id"]: im for im in coco["images"] if Path(im["file_name"]).name.startswith("red")}
    dets = [d for d in oof if d["image_id"] not in red]
    for fold, path in enumerate(models):
        predictor = build_predictor(load_model(path, "torch"))
        for image_id, im in sorted(red.items()):
            if fold_of[im["file_name"]] != fold:
                continue
            image, _ = decode_at_scale(args.sample / im["file_name"])
            got = predictor.predict(polarity(image, args.mode)).detections
            dets += [{"image_id": image_id, "category_id": int(c), "score": float(s),
                      "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                     for b, s, c in zip(got.boxes, got.scores, got.labels, strict=True)]
            print(f"fold {fold} {im['file_name']}: best {max(got.scores, default=0):.3f}")
    gt = subset_coco(coco, {im["id"] for im in coco["images"]})
    print(f"before ({args.run}/oof.bbox.json): {summary(gt, oof)}")
    print(f"after  (red photos {args.mode}):   {summary(gt, dets)}")
    out = args.run / f"oof.red-{args.mode}.bbox.json"
    out.write_text(json.dumps(dets))


if __name__ == "__main__":
    main()
