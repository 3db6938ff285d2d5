"""Crossval runs compared fold by fold, finished or cut short (no model needed).

    python scripts/fold_compare.py docs/runs/cv-s111-l1casc-ema outputs/cv-s111-l1casc-frozenbn

For every fold each run has finished (``foldK/fold.json``), that fold's held-out detections
scored on its own photos: AP50 all / white / red, AP, part AUROC, and at score 0.5 the missed
scratches, boxes on scratched photos that match no scratch and false boxes per clean photo;
then the training minutes the fold logged. Runs must share their folds (``folds.json``); a
fold is compared only where every run has it. Numbers on one fold's 8 photos move by chance:
put a second seed of the baseline beside it to see how far.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scratchdet.data.split import subset_coco
from scratchdet.evaluation import evaluate
from scratchdet.evaluation.box_stats import box_stats


def fold_row(run: Path, fold: int, fold_of: dict[str, int]) -> str:
    """One table row: ``run``'s fold ``fold`` on its own photos (``fold_of``: file -> fold)."""
    coco = json.loads((run / "train_val.json").read_text())
    record = json.loads((run / f"fold{fold}" / "fold.json").read_text())
    gt = subset_coco(coco, {im["id"] for im in coco["images"]
                            if fold_of[im["file_name"]] == fold})
    dets = record["detections"]
    r = evaluate(gt, dets, group_by="colour", part_level=True)
    ap50 = [r.value("AP", "0.50", group=g) for g in ("all", "white", "red")]
    auroc = r.part_level.groups["all"].auroc if r.part_level else float("nan")
    b = box_stats(gt, dets, 0.5)
    minutes = record["facts"].get("train_minutes", float("nan"))
    return ("  ".join(f"{v:6.3f}" for v in ap50) + f"  {r.value('AP'):.3f}  {auroc:.3f} | "
            f"{b.missed}/{len(b.matched_per_gt)}  {b.unmatched_on_scratched:3d}  "
            f"{b.mean_false_per_clean:.2f} | {minutes:5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    folds_of = [json.loads((run / "folds.json").read_text()) for run in args.runs]
    if any(f != folds_of[0] for f in folds_of):
        raise SystemExit("the runs do not share their folds (folds.json differ)")
    folds = sorted(set(folds_of[0].values()))
    print("fold run" + " " * 36 + "AP50 all  white    red     AP  AUROC | missed unmatched "
          "false/clean @0.5 | train min")
    for fold in folds:
        if not all((run / f"fold{fold}" / "fold.json").is_file() for run in args.runs):
            continue
        for run in args.runs:
            print(f"{fold:4d} {str(run)[-40:]:<40} {fold_row(run, fold, folds_of[0])}")


if __name__ == "__main__":
    main()
