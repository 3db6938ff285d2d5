"""Verdicts at thresholds picked on the other folds, for finished crossval runs (no model).

    python scripts/fold_picks.py outputs/cv [RUN ...] [--recall 0.95]

Reads each run's ``eval/metrics.json`` (the part-level photo scores of its out-of-fold
detections, under the rule the run used), ``folds.json`` and ``train_val.json``, and prints what
``crossval`` prints since 27 Nov (:func:`scratchdet.evaluation.fold_pick.fold_pick`): one
threshold for all parts, then one per colour, each fold judged at a pick on the other folds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scratchdet.evaluation.fold_pick import fold_pick
from scratchdet.evaluation.image_level import PartLevelResult


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--recall", type=float, default=0.95)
    args = parser.parse_args()
    for run in args.runs:
        metrics = json.loads((run / "eval" / "metrics.json").read_text())
        photos = PartLevelResult.from_dict(metrics["part_level"]).photos
        by_name = json.loads((run / "folds.json").read_text())
        coco = json.loads((run / "train_val.json").read_text())
        folds = {im["id"]: by_name[im["file_name"]] for im in coco["images"]
                 if im["file_name"] in by_name}
        print(run)
        for per_group in (False, True):
            print(" ", fold_pick(photos, folds, args.recall, per_group).describe())


if __name__ == "__main__":
    main()
