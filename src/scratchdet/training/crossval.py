"""K-fold cross-validation: every photo is predicted by a model that never saw it.

The sample has 8 train and 16 val photos and its train photos hold no red scratch, so one
train/val split says little. ``run_crossval`` pools the photos of several COCO files (by
default the sample's train + val), deals them into ``k`` folds stratified by (colour,
clean/scratched), trains one model per fold on the other folds with the same config, predicts
the held-out fold with the tiled predictor, and evaluates all out-of-fold detections together
with the project's evaluator (table per colour + part level). No held-out photo is used to
pick a checkpoint: per-epoch validation is switched off and each fold keeps its last weights.
With ``mine_from`` (an earlier run, same folds) each fold first predicts its own training
photos with that run's fold model and trains with the false boxes found as hard negatives
(``tile_options.hard_negatives``): a second round that never looks at the held-out fold.

Output folder::

    train_val.json               the pooled photos (file names relative to the sample root)
    folds.json                   file name -> fold
    fold<i>/train.json, heldout.json, runs/..., predict/, mined/ (with mine_from)
    oof.bbox.json                out-of-fold detections of every photo (COCO results)
    eval/                        evaluator outputs (metrics.json, table, part level)
    crossval.json                per-fold facts (photos, boxes, minutes, AP50) + headline
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scratchdet.data.records import DEFAULT_COLOURS, colour_from_name
from scratchdet.inference.predictor import DEFAULT_MAX_SINGLE
from scratchdet.io import write_json_atomic, write_text_atomic

Log = Callable[[str], None]


def assign_folds(coco: Mapping[str, Any], k: int, seed: int = 0,
                 colours: Sequence[str] = DEFAULT_COLOURS) -> dict[int, int]:
    """Image id -> fold in ``0..k-1``, stratified by (colour, clean/scratched).

    Strata are visited in sorted order; inside one the photos are sorted by file name,
    shuffled by ``random.Random(seed)`` and dealt round-robin, the deal continuing from
    stratum to stratum so that fold sizes differ by at most one photo.
    """
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    images = list(coco.get("images", []))
    if len(images) < k:
        raise ValueError(f"{len(images)} photos cannot fill {k} folds")
    scratched = {a["image_id"] for a in coco.get("annotations", [])}
    strata: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for img in images:
        state = "scratched" if img["id"] in scratched else "clean"
        strata.setdefault((colour_from_name(img["file_name"], colours), state), []).append(img)
    rng = random.Random(seed)
    folds: dict[int, int] = {}
    dealt = 0
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda im: im["file_name"])
        rng.shuffle(members)
        for img in members:
            folds[int(img["id"])] = dealt % k
            dealt += 1
    return folds


def fold_split(coco: Mapping[str, Any], folds: Mapping[int, int],
               fold: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training COCO, held-out COCO) of ``fold``; ids as in ``coco``."""
    parts: list[dict[str, Any]] = []
    for held in (False, True):
        ids = {i for i, f in folds.items() if (f == fold) == held}
        parts.append({
            "categories": list(coco.get("categories", [])),
            "images": [im for im in coco["images"] if im["id"] in ids],
            "annotations": [a for a in coco.get("annotations", []) if a["image_id"] in ids],
        })
    return parts[0], parts[1]


def merge_present(root: Path, splits: Sequence[str]) -> dict[str, Any]:
    """One COCO dict of the photos of ``root/annotations/<split>.json`` present in
    ``root/<split>/``; file names become ``<split>/<name>``, ids are renumbered."""
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    cats = None
    for split in splits:
        ann_path = root / "annotations" / f"{split}.json"
        if not ann_path.is_file():
            raise FileNotFoundError(f"{ann_path}: not found (expected the sample layout)")
        coco = json.loads(ann_path.read_text(encoding="utf-8"))
        cats = cats or coco["categories"]
        present = {im["id"]: im for im in coco["images"]
                   if (root / split / im["file_name"]).is_file()}
        new_id = {old: len(images) + k + 1 for k, old in enumerate(present)}
        images += [{**im, "id": new_id[i], "file_name": f"{split}/{im['file_name']}"}
                   for i, im in present.items()]
        anns += [{**a, "image_id": new_id[a["image_id"]]} for a in coco["annotations"]
                 if a["image_id"] in new_id]
    for k, a in enumerate(anns, start=1):
        a["id"] = k
    if not images:
        raise FileNotFoundError(f"{root}: none of the photos of {', '.join(splits)} is there")
    return {"images": images, "annotations": anns, "categories": cats}


@dataclass(frozen=True)
class CrossValSettings:
    """What ``scratchdet crossval`` runs."""

    config: Path
    sample: Path
    out: Path
    folds: int = 3
    seed: int = 0
    splits: Sequence[str] = ("train", "val")
    overrides: Sequence[str] = ()
    only_folds: Sequence[int] | None = None  # None: all (the pooled table needs all)
    max_single: int | None = DEFAULT_MAX_SINGLE  # prediction path (None: training tiles)
    reuse: Path | None = None  # an earlier crossval folder: its fold models, no training
    jobs: int = 1  # folds run at once, each in its own process (a GPU machine, many cores)
    bootstrap: int = 200  # photo resamples for the AP50 intervals (0: none)
    tta: tuple[str, ...] = ()  # test-time flips of the held-out photos (inference.tta)
    scale: float = 1.0  # decode scale of the held-out photos
    mine_from: Path | None = None  # an earlier crossval folder: mine hard negatives with its models


@dataclass
class CrossValResult:
    """Per-fold facts, the pooled evaluation and its headline numbers."""

    out: Path
    folds: list[dict[str, Any]] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)
    text: str = ""


def snapshot_config(s: CrossValSettings) -> CrossValSettings:
    """``s`` with its config copied to ``<out>/config.yaml`` (the text as it is now)."""
    snap = s.out / "config.yaml"
    if snap.resolve() == s.config.resolve():
        return s
    write_text_atomic(snap, s.config.read_text(), force=True)
    return replace(s, config=snap)


def fold_config(s: CrossValSettings, fold_dir: Path, extra: Sequence[str] = ()) -> Any:
    """The training config of one fold: the file, the fold's data, no per-epoch validation
    (``extra``: more overrides)."""
    from scratchdet.config import load_config
    from scratchdet.training.config import TrainConfig

    fixed = [f"train_annotations={fold_dir / 'train.json'}", f"train_images={s.sample}",
             f"val_annotations={fold_dir / 'heldout.json'}", f"val_images={s.sample}",
             "val_every_n_epochs=100000", f"output_dir={fold_dir / 'runs'}", "run_name=model"]
    return load_config(TrainConfig, s.config, [*s.overrides, *extra, *fixed])


def run_fold(s: CrossValSettings, coco: Mapping[str, Any], folds: Mapping[int, int],
             fold: int, earlier: Mapping[int, Mapping[str, Any]] | None,
             log: Log) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train on the other folds (or, with ``s.reuse``, take ``earlier[fold]``), predict this
    fold; (facts, dets). ``earlier``: fold facts of the ``s.reuse`` or ``s.mine_from`` run."""
    from scratchdet.inference import run

    fold_dir = s.out / f"fold{fold}"
    train, held = fold_split(coco, folds, fold)
    write_json_atomic(fold_dir / "train.json", train, force=True)
    write_json_atomic(fold_dir / "heldout.json", held, force=True)
    if s.reuse is not None and earlier is not None:
        log(f"fold {fold}: reusing {earlier[fold]['model']}")
        model_path = Path(earlier[fold]["model"])
        minutes, steps = earlier[fold]["train_minutes"], earlier[fold]["steps"]
    else:
        extra = []
        if s.mine_from is not None and earlier is not None:
            mined = _mine(s, fold_dir, train, Path(earlier[fold]["model"]), fold, log)
            extra = [f"tile_options.hard_negatives={mined}"]
        model_path, minutes, steps = _train_fold(s, fold_dir, train, held, fold, log, extra)
    photos, ids = _photos_and_ids(s.sample, held)
    results = run.predict_for_evaluation(model_path, photos, ids, fold_dir / "predict",
                                         s.max_single, s.tta, s.scale)
    failed = [r.error for r in results if r.error]
    if failed:
        raise ValueError(f"fold {fold}: {len(failed)} photo(s) failed, e.g. {failed[0]}")
    dets = [d for r in results for d in r.detections]
    facts = {"fold": fold, "train_photos": len(train["images"]),
             "train_boxes": len(train["annotations"]), "heldout_photos": len(held["images"]),
             "heldout_boxes": len(held["annotations"]), "train_minutes": minutes,
             "steps": steps, "model": str(model_path), "max_single": s.max_single,
             "tta": list(s.tta), "scale": s.scale,
             "mined_from": None if s.mine_from is None else str(s.mine_from)}
    log(f"fold {fold}: {len(dets)} detections on held-out photos")
    return facts, dets


def _photos_and_ids(sample: Path, coco: Mapping[str, Any]) -> tuple[list[Path], dict[str, int]]:
    """The photo files of a COCO dict and their image ids by file name."""
    photos = [sample / im["file_name"] for im in coco["images"]]
    return photos, {Path(im["file_name"]).name: int(im["id"]) for im in coco["images"]}


def _mine(s: CrossValSettings, fold_dir: Path, train: Mapping[str, Any], model: Path,
          fold: int, log: Log) -> Path:
    """Detections of ``model`` (the earlier run's fold model) on this fold's training photos
    (a file)."""
    from scratchdet.inference import run

    photos, ids = _photos_and_ids(s.sample, train)
    log(f"fold {fold}: mining hard negatives on {len(photos)} training photos with {model}")
    run.predict_for_evaluation(model, photos, ids, fold_dir / "mined", s.max_single)
    return fold_dir / "mined" / "results.bbox.json"


def _train_fold(s: CrossValSettings, fold_dir: Path, train: Mapping[str, Any],
                held: Mapping[str, Any], fold: int, log: Log,
                extra: Sequence[str] = ()) -> tuple[Path, float, int]:
    """Train the fold's model; (model file, minutes, steps)."""
    from scratchdet.training.fit import fit

    cfg = fold_config(s, fold_dir, extra)
    log(f"fold {fold}: training on {len(train['images'])} photos "
        f"({len(train['annotations'])} boxes), holding out {len(held['images'])}")
    start = time.perf_counter()
    result = fit(cfg)
    minutes = (time.perf_counter() - start) / 60
    assert result.model_path is not None  # one process: rank 0
    log(f"fold {fold}: trained in {minutes:.1f} min")
    return result.model_path, round(minutes, 2), result.global_step


def reused_models(folder: Path, folds_by_name: Mapping[str, int],
                  wanted: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Fold -> facts (model, minutes, steps) of an earlier crossval run in ``folder``.

    Raises ValueError when its folds differ from ``folds_by_name``, FileNotFoundError when a
    wanted fold has no model there.
    """
    earlier = json.loads((folder / "folds.json").read_text(encoding="utf-8"))
    if earlier != dict(folds_by_name):
        raise ValueError(f"{folder}/folds.json: its folds differ from these (same photos, "
                         "--folds and --seed expected to reuse its models)")
    facts = {f["fold"]: f for f in
             json.loads((folder / "crossval.json").read_text(encoding="utf-8"))["folds"]}
    for fold in wanted:
        if fold not in facts or not Path(facts[fold]["model"]).is_file():
            raise FileNotFoundError(f"{folder}: no model of fold {fold} to reuse")
    return facts


def _init_fold_process(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_folds(s: CrossValSettings, coco: Mapping[str, Any], folds: Mapping[int, int],
               chosen: Sequence[int], earlier: Mapping[int, Mapping[str, Any]] | None,
               log: Log) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``run_fold`` for each chosen fold: in turn, or ``s.jobs`` at once in spawned processes
    (each with its share of the CPU threads; their log lines go to stdout)."""
    jobs = min(s.jobs, len(chosen))
    if jobs <= 1:
        return [run_fold(s, coco, folds, f, earlier, log) for f in chosen]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    log(f"running {len(chosen)} folds, {jobs} at once ({threads} CPU threads each)")
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_fold_process, initargs=(threads,)) as pool:
        runs = [pool.submit(run_fold, s, coco, folds, f, earlier, print) for f in chosen]
        return [r.result() for r in runs]


def run_crossval(s: CrossValSettings, log: Log = print) -> CrossValResult:
    """Run every fold, then evaluate the pooled out-of-fold detections (see module doc)."""
    from scratchdet.evaluation import evaluate
    from scratchdet.evaluation.config import DEFAULT_THRESHOLDS
    from scratchdet.evaluation.outputs import write_evaluation
    from scratchdet.evaluation.result import part_level_text
    from scratchdet.evaluation.verdict_threshold import DEFAULT_TARGET_RECALL

    mined = [] if s.mine_from is None else [f"tile_options.hard_negatives={s.mine_from}"]
    cfg = fold_config(s, s.out / "fold0", mined)  # fail early on a bad config or override
    if cfg.input_mode == "tiles":
        from scratchdet.training.datamodule import tile_config

        tile_config(cfg)
    coco = merge_present(s.sample, s.splits)
    folds = assign_folds(coco, s.folds, s.seed)
    names = {im["id"]: im["file_name"] for im in coco["images"]}
    by_name = {names[i]: f for i, f in sorted(folds.items())}
    chosen = list(range(s.folds) if s.only_folds is None else s.only_folds)
    if s.reuse is not None and s.mine_from is not None:
        raise ValueError("mine_from trains new models; it cannot go with reuse")
    source = s.reuse or s.mine_from  # same folds, a model for each
    earlier = None if source is None else reused_models(source, by_name, chosen)
    if s.reuse is None:  # every fold trains with this text, even if the file changes
        s = snapshot_config(s)
    write_json_atomic(s.out / "train_val.json", coco, force=True)
    write_json_atomic(s.out / "folds.json", by_name, force=True, indent=1)
    res = CrossValResult(s.out)
    dets: list[dict[str, Any]] = []
    for facts, fold_dets in _run_folds(s, coco, folds, chosen, earlier, log):
        res.folds.append(facts)
        dets += fold_dets
    held_ids = {i for i, f in folds.items() if f in set(chosen)}
    gt = {**coco, "images": [im for im in coco["images"] if im["id"] in held_ids],
          "annotations": [a for a in coco["annotations"] if a["image_id"] in held_ids]}
    write_json_atomic(s.out / "oof.bbox.json", dets, force=True)
    result = evaluate(gt, dets, group_by="colour", part_level=True,
                      target_recall=DEFAULT_TARGET_RECALL)
    write_evaluation(result, s.out / "eval", force=True)
    assert result.part_level is not None
    res.text = result.table_text() + "\n" + part_level_text(result.part_level, DEFAULT_THRESHOLDS)
    for g in ("all", "white", "red"):
        if g in result.groups:
            res.headline[f"oof_AP50_{g}"] = result.value("AP", "0.50", group=g)
    if s.bootstrap:
        from scratchdet.evaluation.bootstrap import bootstrap_ap, bootstrap_text

        cis = bootstrap_ap(gt, dets, samples=s.bootstrap)
        res.text += "\n" + bootstrap_text(cis)
        for g, ci in cis.items():
            res.headline[f"oof_AP50_{g}_ci95"] = [round(ci.low, 4), round(ci.high, 4)]
    res.headline["oof_AP_all"] = result.value("AP")
    res.headline["photos"] = len(gt["images"])
    res.headline["boxes"] = len(gt["annotations"])
    res.headline["train_minutes_total"] = round(sum(f["train_minutes"] or 0 for f in res.folds),
                                                2)
    write_json_atomic(s.out / "crossval.json", {"headline": res.headline, "folds": res.folds},
                      force=True, indent=2)
    return res
