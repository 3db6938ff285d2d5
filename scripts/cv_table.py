"""One docs/quality.md table row per finished crossval run and nested-box rule (no model).

    python scripts/cv_table.py outputs/cv-s111-casc [RUN ...] [--rules keep,decay:0.5:0.5]

Reads each run as ``nested_sweep.load_run`` does (a run made with ``--nested keep``: the
boxes as merged), applies each rule (``nested_sweep.apply``) and prints:
AP50 all / white / red | AP | part AUROC (red) | the in-sample 0.95-recall pick (caught,
clean rejected; "N elsewhere": caught only by boxes on no labelled scratch) | the fewest
clean parts rejected with all but one scratched part caught | fold-wise picks, one threshold
/ one per colour | at 0.5: boxes per scratch (median/max), missed, unmatched boxes on
scratched photos, false boxes per clean photo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nested_sweep import apply, load_run  # scripts/ (run as a script)

from scratchdet.evaluation import evaluate
from scratchdet.evaluation.box_stats import box_stats
from scratchdet.evaluation.fold_pick import fold_pick


def row(run: Path, rule: str, recall: float = 0.95) -> str:
    """The table row of ``run``'s out-of-fold boxes under ``rule``."""
    gt, dets, folds = load_run(run)
    dets = apply(dets, rule)
    res = evaluate(gt, dets, group_by="colour", part_level=True, target_recall=recall)
    part = res.part_level
    assert part is not None
    ap50 = " / ".join(f"{res.value('AP', '0.50', group=g):.3f}" for g in ("all", "white", "red"))
    groups = part.groups
    n_scr, n_clean = groups["all"].scratched, groups["all"].clean
    target = groups["all"].target
    pick = target.point if target is not None else None
    elsewhere = box_stats(gt, dets, pick.threshold).caught_elsewhere if pick else 0
    in_sample = (f"{pick.caught}/{n_scr}{f' ({elsewhere} elsewhere)' if elsewhere else ''}, "
                 f"{pick.rejected}/{n_clean}" if pick else "unreachable")
    fewest = min((p.rejected for p in groups["all"].curve if p.caught >= n_scr - 1), default=None)
    fold = [fold_pick(part.photos, folds, recall, g).point for g in (False, True)]
    fold_txt = "; ".join(f"{p.caught}/{n_scr}, {p.rejected}/{n_clean}" for p in fold)
    b = box_stats(gt, dets, 0.5)
    return (f"| {run.name} {rule} | {ap50} | {res.value('AP'):.3f} | "
            f"{groups['all'].auroc:.3f} ({groups['red'].auroc:.3f}) | {in_sample} | "
            f"{'none' if fewest is None else fewest} | {fold_txt} | "
            f"{b.median_matched:g}/{b.max_matched}, {b.missed}/{len(b.matched_per_gt)}, "
            f"{b.unmatched_on_scratched}, {b.mean_false_per_clean:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--rules", default="keep,decay:0.5:0.5")
    parser.add_argument("--recall", type=float, default=0.95)
    args = parser.parse_args()
    for run in args.runs:
        for rule in args.rules.split(","):
            print(row(run, rule, args.recall))


if __name__ == "__main__":
    main()
