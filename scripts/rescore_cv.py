"""Rescoring remedies for false alarms, measured out of fold on crossval runs (issue 14).

    python scripts/rescore_cv.py outputs/cv-s111 [outputs/cv-s7 ...] [--sample DIR]

For each run: crop features of every out-of-fold detection, jittered scratch and clean window
(cached in ``<run>/rescore_features.pkl``), then the run's detections as they are ("none"), and
rescored by a crop verifier and by a clean-surface prior (``scratchdet.training.rescore``),
each fitted per fold on that fold's training photos only. Prints AP50 all/white/red, AP, part
AUROC, the verdict at the 0.95-recall pick (caught/scratched, rejected/clean), the fewest clean
parts rejected with at least all-but-one scratched part caught, the verdicts at thresholds
picked on the other folds (one for all parts; one per colour), and box counts at 0.5.
``--nested`` applies on top of the run's own rule (the config's ``nested``;
a run made with ``crossval --nested keep`` has every box as merged).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from pathlib import Path

from nested_sweep import apply as apply_nested  # scripts/ (run as a script)

from scratchdet.data.split import subset_coco
from scratchdet.evaluation import evaluate
from scratchdet.evaluation.box_stats import box_stats
from scratchdet.evaluation.fold_pick import fold_pick
from scratchdet.models.verifier import CropFeatures
from scratchdet.training.rescore import bank_distances, photo_crops, rescored_detections

METHODS = (("none", 1.0), ("verifier", 1.0), ("verifier", 10.0), ("verifier_q", 1.0),
           ("prior", 1.0), ("stack_v", 1.0), ("stack_vp", 1.0))


def nested_rule(dets: list[dict], rule: str) -> list[dict]:
    """``rule`` (as ``crossval --nested``) applied to each photo's detections."""
    return dets if rule == "keep" else apply_nested(dets, rule)


def row(gt: dict, dets: list[dict], fold_of: dict[int, int]) -> str:
    r = evaluate(gt, dets, group_by="colour", part_level=True, target_recall=0.95)
    ap50 = [r.value("AP", "0.50", group=g) for g in ("all", "white", "red")]
    part = r.part_level.groups["all"] if r.part_level else None
    pick = part.target.point if part and part.target else None
    at_pick = f"{pick.caught}/{pick.scratched} {pick.rejected}/{pick.clean} @{pick.threshold:.3f}" \
        if pick else "no pick"
    need = (part.scratched - 1) if part else 0
    best = min((p.rejected for p in part.curve if p.caught >= need), default=-1) if part else -1
    b = box_stats(gt, dets, 0.5)
    fw = [fold_pick(r.part_level.photos, fold_of, 0.95, per_group=g).point for g in (False, True)] \
        if r.part_level else []
    fold_wise = "; ".join(f"{p.caught}/{p.scratched} {p.rejected}/{p.clean}" for p in fw)
    return ("  ".join(f"{v:5.3f}" for v in ap50) + f"  {r.value('AP'):.3f}  "
            f"{part.auroc if part else float('nan'):.3f}  {at_pick:<20} {best:>2}  "
            f"{fold_wise:<22}| "
            f"{b.median_matched:g}/{b.max_matched} {b.missed:>2} {b.unmatched_on_scratched:>3} "
            f"{b.mean_false_per_clean:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--nested", default="keep",
                        help="geometry.nested rule applied after rescoring (as crossval --nested)")
    parser.add_argument("--sample", type=Path, default=Path(os.environ.get(
        "SCRATCHDET_SAMPLE", "data/scratch-sample")))
    args = parser.parse_args()
    model = CropFeatures()
    for run in args.runs:
        cache = run / "rescore_features.pkl"
        if cache.exists():
            photos = pickle.loads(cache.read_bytes())
        else:
            photos = photo_crops(run, args.sample, model)
            cache.write_bytes(pickle.dumps(photos))
        distances = bank_distances(photos)
        gt = subset_coco(json.loads((run / "train_val.json").read_text()),
                         {p.image_id for p in photos})
        fold_of = {p.image_id: p.fold for p in photos}
        print(f"\n{run}\nmethod        AP50 all white red    AP   AUROC  pick: caught rejected"
              "  best  fold-wise: one; per colour | per-scratch missed unmatched false/clean "
              "@0.5")
        for method, l2 in METHODS:
            dets = nested_rule(rescored_detections(photos, method, l2, distances), args.nested)
            print(f"{method + ' l2=' + format(l2, 'g'):<13} {row(gt, dets, fold_of)}")


if __name__ == "__main__":
    main()
