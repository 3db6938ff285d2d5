"""int8 against float, out of fold: the quality check of ``scratchdet export --int8``.

    python scripts/int8_oof.py outputs/cv-s111 [outputs/cv-s7 ...] [--sample DIR]
        [--keep-float REGEX] [--out DIR]

For each crossval run and fold: the fold model exported to ONNX (float, the default export)
and quantised to int8 calibrated on that fold's own training photos
(``inference.quantize.quantize_onnx``), each predicting the fold's held-out photos with ONNX
Runtime as ``crossval`` predicts (scores from 0); prints AP50 all/white/red, AP and part AUROC
of the 24 out-of-fold photos for both, and the verdicts at thresholds picked on the other folds
(recall 0.95, as ``crossval`` prints them). ``--keep-float``: the nodes left in float, for a
preset whose int8 was not measured yet (``quantize_onnx``'s ``keep_float``); ``--out``: keep
each run's out-of-fold detections (``RUN_NAME.float.bbox.json``, ``.int8.bbox.json``).
Measured 27 Nov (docs/speed.md): seed 111 float 0.666 / int8 0.655 AP50, seed 7 0.697 / 0.688.
For a preset whose int8 is measured, ``scratchdet crossval --reuse RUN --int8`` does the same
with the whole crossval table (it reproduced this script's seed-111 Lite1 cascade row).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from batched_oof import oof_row  # scripts/ (run as a script)

from scratchdet.evaluation import evaluate
from scratchdet.evaluation.fold_pick import fold_pick
from scratchdet.inference.export import export_checkpoint
from scratchdet.inference.load import build_predictor, load_model
from scratchdet.inference.quantize import quantize_onnx
from scratchdet.inference.run import coco_results


def _held_out(onnx: Path, held: dict, sample: Path) -> list[dict]:
    loaded = load_model(onnx, "onnx")
    predictor = build_predictor(loaded, score_threshold=0.0)
    out: list[dict] = []
    for im in held["images"]:
        found = predictor.predict(sample / im["file_name"]).detections
        out += coco_results(found, im["id"], loaded.spec.category_ids)
    return out


def _verdict(gt: dict, dets: list[dict], folder: Path) -> str:
    """The fold-wise verdict line of ``dets`` (one threshold for all parts)."""
    photos = evaluate(gt, dets, group_by="colour", part_level=True).part_level.photos
    by_name = json.loads((folder / "folds.json").read_text())
    folds = {im["id"]: by_name[im["file_name"]] for im in gt["images"]}
    return "           " + fold_pick(photos, folds, 0.95).describe()


def run(folder: Path, sample: Path, tmp: Path, keep_float: str | None,
        out: Path | None) -> None:
    gt = json.loads((folder / "train_val.json").read_text())
    dets: dict[str, list[dict]] = {"float": [], "int8": []}
    for fold_dir in sorted(d for d in folder.glob("fold[0-9]*") if d.is_dir()):
        held = json.loads((fold_dir / "heldout.json").read_text())
        train = json.loads((fold_dir / "train.json").read_text())
        float_path, _ = export_checkpoint(fold_dir / "runs" / "model" / "model.pt",
                                          tmp / f"{fold_dir.name}.onnx")
        int8_path = tmp / f"{fold_dir.name}_int8.onnx"
        quantize_onnx(float_path, int8_path, [sample / im["file_name"] for im in train["images"]],
                      keep_float=keep_float)
        dets["float"] += _held_out(float_path, held, sample)
        dets["int8"] += _held_out(int8_path, held, sample)
    print(f"{folder}: out of fold, AP50 all / white / red")
    for name, found in dets.items():
        print(oof_row(name, gt, found))
        print(_verdict(gt, found, folder))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{folder.name}.{name}.bbox.json").write_text(json.dumps(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--sample", type=Path,
                        default=Path(os.environ.get("SCRATCHDET_SAMPLE", "data/scratch-sample")))
    parser.add_argument("--keep-float", default=None,
                        help="nodes left in float (regex); default: the preset's measured entry")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scratchdet-int8-") as tmp:
        for folder in args.runs:
            run(folder, args.sample, Path(tmp), args.keep_float, args.out)


if __name__ == "__main__":
    main()
