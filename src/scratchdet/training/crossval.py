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
With ``reuse`` and ``int8`` each fold predicts with the int8 export of the earlier run's fold
model (``inference.quantize``), calibrated on the fold's own training photos: the quality of
what ``scratchdet export --int8`` ships, out of fold.

Output folder::

    train_val.json               the pooled photos (file names relative to the sample root)
    folds.json                   file name -> fold
    run.json                     the settings the folds depend on (checked by --resume)
    fold<i>/train.json, heldout.json, runs/..., predict/, mined/ (with mine_from)
    fold<i>/model.int8.onnx      with reuse and int8: the reused model's int8 export
    fold<i>/fold.json            a finished fold's facts and detections (kept by --resume)
    oof.bbox.json                out-of-fold detections of every photo (COCO results)
    eval/                        evaluator outputs (metrics.json, table, part level)
    crossval.json                per-fold facts (photos, boxes, minutes, AP50) + headline
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from scratchdet.config import load_config, resolve_config
from scratchdet.data.records import DEFAULT_COLOURS
from scratchdet.data.split import merge_present, stratified_folds, subset_coco
from scratchdet.evaluation.verdict_threshold import DEFAULT_TARGET_RECALL
from scratchdet.evaluation.workflow import EvaluationRun, evaluate_and_write
from scratchdet.geometry.nested import KEEP, NestedRule, format_nested, parse_nested
from scratchdet.inference.export import export_int8
from scratchdet.inference.predictor import DEFAULT_MAX_SINGLE
from scratchdet.inference.run import predict_for_evaluation
from scratchdet.io import write_json_atomic, write_text_atomic
from scratchdet.training.config import TrainConfig
from scratchdet.training.crossval_outputs import (
    CrossValHeadline,
    CrossValResult,
    FoldFacts,
    fold_wise_picks,
    operator_box_stats,
    stamp_fold_models,
)
from scratchdet.training.crossval_resume import (
    FOLD_FILE,
    check_same_folds,
    check_same_run,
    finished_fold,
    fold_difference,
    forget_fold,
    resume_checkpoint,
    run_record,
    save_fold,
    write_run_record,
)
from scratchdet.training.datamodule import tile_config
from scratchdet.training.fit import fit

Log = Callable[[str], None]
Detection = dict[str, Any]
HEADLINE_GROUPS = ("all", "white", "red")


def assign_folds(coco: Mapping[str, Any], k: int, seed: int = 0,
                 colours: Sequence[str] = DEFAULT_COLOURS) -> dict[int, int]:
    """Image id -> fold in ``0..k-1``, stratified by (colour, clean/scratched).

    The folds of :func:`scratchdet.data.split.stratified_folds` (strata in sorted order, each
    sorted by file name, shuffled by ``random.Random(seed)`` and dealt round-robin), as a map.
    """
    return {i: f for f, ids in enumerate(stratified_folds(coco, k, seed, colours)) for i in ids}


def fold_split(coco: Mapping[str, Any], folds: Mapping[int, int],
               fold: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training COCO, held-out COCO) of ``fold``; ids as in ``coco``."""
    train = subset_coco(coco, {i for i, f in folds.items() if f != fold})
    held = subset_coco(coco, {i for i, f in folds.items() if f == fold})
    return train, held


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
    nested: NestedRule | None = None  # geometry.nested rule after the merge (None: the config's)
    red_polarity: bool | None = None  # red parts shown as white ones (None: as each model says)
    resume: bool = False  # continue the run in ``out`` (training.crossval_resume)
    int8: bool = False  # with reuse: predict with each fold model's int8 export (quantize)


def snapshot_config(s: CrossValSettings) -> CrossValSettings:
    """``s`` with its config copied to ``<out>/config.yaml`` (the text as it is now)."""
    snap = s.out / "config.yaml"
    config = resolve_config(s.config)
    if snap.resolve() == config.resolve():
        return s
    write_text_atomic(snap, config.read_text(), force=True)
    return replace(s, config=snap)


def fold_config(s: CrossValSettings, fold_dir: Path, extra: Sequence[str] = ()) -> TrainConfig:
    """The training config of one fold: the file, the fold's data, no per-epoch validation
    (``extra``: more overrides)."""
    fixed = [f"train_annotations={fold_dir / 'train.json'}", f"train_images={s.sample}",
             f"val_annotations={fold_dir / 'heldout.json'}", f"val_images={s.sample}",
             "val_every_n_epochs=100000", f"output_dir={fold_dir / 'runs'}", "run_name=model"]
    return load_config(TrainConfig, s.config, [*s.overrides, *extra, *fixed])


def run_fold(s: CrossValSettings, coco: Mapping[str, Any], folds: Mapping[int, int],
             fold: int, earlier: Mapping[int, FoldFacts] | None,
             log: Log) -> tuple[FoldFacts, list[Detection]]:
    """Train on the other folds (or, with ``s.reuse``, take ``earlier[fold]``), predict this
    fold; (facts, dets). ``earlier``: fold facts of the ``s.reuse`` or ``s.mine_from`` run."""
    fold_dir = s.out / f"fold{fold}"
    done = finished_fold(fold_dir) if s.resume else None
    if done is not None:
        log(f"fold {fold}: finished earlier, kept ({fold_dir / FOLD_FILE})")
        return FoldFacts.from_dict(done[0]), done[1]
    forget_fold(fold_dir)
    train, held = fold_split(coco, folds, fold)
    write_json_atomic(fold_dir / "train.json", train, force=True)
    write_json_atomic(fold_dir / "heldout.json", held, force=True)
    ckpt: Path | None = None
    if s.reuse is not None and earlier is not None:
        log(f"fold {fold}: reusing {earlier[fold].model}")
        model_path = Path(earlier[fold].model)
        minutes, steps = earlier[fold].train_minutes, earlier[fold].steps
    else:
        ckpt = resume_checkpoint(fold_dir) if s.resume else None
        extra = [] if ckpt is None else [f"resume={ckpt}"]
        if ckpt is not None:
            log(f"fold {fold}: resuming its training from {ckpt}")
        if s.mine_from is not None and earlier is not None:
            mined = _mine(s, fold_dir, train, Path(earlier[fold].model), fold, log)
            extra.append(f"tile_options.hard_negatives={mined}")
        model_path, minutes, steps = _train_fold(s, fold_dir, train, held, fold, log, extra)
    if s.int8:
        model_path = _int8_model(s, fold_dir, train, model_path, fold, log)
    photos, ids = _photos_and_ids(s.sample, held)
    results = predict_for_evaluation(model_path, photos, ids, fold_dir / "predict",
                                     s.max_single, s.tta, s.scale, s.nested, s.red_polarity)
    failed = [r.error for r in results if r.error]
    if failed:
        raise ValueError(f"fold {fold}: {len(failed)} photo(s) failed, e.g. {failed[0]}")
    dets = [d for r in results for d in r.detections]
    facts = FoldFacts(fold, len(train["images"]), len(train["annotations"]),
                      len(held["images"]), len(held["annotations"]), minutes, steps,
                      str(model_path), s.max_single, tuple(s.tta), s.scale,
                      None if s.mine_from is None else str(s.mine_from),
                      None if ckpt is None else str(ckpt), s.int8)
    save_fold(fold_dir, facts.to_dict(), dets)
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
    photos, ids = _photos_and_ids(s.sample, train)
    log(f"fold {fold}: mining hard negatives on {len(photos)} training photos with {model}")
    predict_for_evaluation(model, photos, ids, fold_dir / "mined", s.max_single,
                           nested=KEEP)  # every box, as mining was measured
    return fold_dir / "mined" / "results.bbox.json"


def _int8_model(s: CrossValSettings, fold_dir: Path, train: Mapping[str, Any], model: Path,
                fold: int, log: Log) -> Path:
    """The int8 export of ``model``, calibrated on this fold's training photos."""
    photos, _ = _photos_and_ids(s.sample, train)
    path, facts = export_int8(model, fold_dir / "model.int8.onnx", photos)
    log(f"fold {fold}: int8 export ({facts['nodes']} nodes, calibrated on {len(photos)} "
        f"training photos): {path}")
    return path


def _train_fold(s: CrossValSettings, fold_dir: Path, train: Mapping[str, Any],
                held: Mapping[str, Any], fold: int, log: Log,
                extra: Sequence[str] = ()) -> tuple[Path, float, int]:
    """Train the fold's model; (model file, minutes, steps)."""
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
                  wanted: Sequence[int]) -> dict[int, FoldFacts]:
    """Fold -> facts (model, minutes, steps) of an earlier crossval run in ``folder``.

    Raises ValueError when its folds differ from ``folds_by_name``, FileNotFoundError when a
    wanted fold has no model there.
    """
    earlier = json.loads((folder / "folds.json").read_text(encoding="utf-8"))
    difference = fold_difference(earlier, folds_by_name)
    if difference is not None:
        raise ValueError(f"{folder}/folds.json: its folds differ from these ({difference}; "
                         "same photos, --folds and --seed expected to reuse its models)")
    facts = {f["fold"]: FoldFacts.from_dict(f) for f in
             json.loads((folder / "crossval.json").read_text(encoding="utf-8"))["folds"]}
    for fold in wanted:
        if fold not in facts or not Path(facts[fold].model).is_file():
            raise FileNotFoundError(f"{folder}: no model of fold {fold} to reuse")
    return facts


def _init_fold_process(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_folds(s: CrossValSettings, coco: Mapping[str, Any], folds: Mapping[int, int],
               chosen: Sequence[int], earlier: Mapping[int, FoldFacts] | None,
               log: Log) -> list[tuple[FoldFacts, list[Detection]]]:
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


def checked_settings(s: CrossValSettings) -> CrossValSettings:
    """Load fold 0's config (and its tile options) now: fail early on a bad config. Returns
    ``s`` with the config's ``nested`` rule unless ``s`` names one."""
    mined = [] if s.mine_from is None else [f"tile_options.hard_negatives={s.mine_from}"]
    cfg = fold_config(s, s.out / "fold0", mined)
    if cfg.input_mode == "tiles":
        tile_config(cfg)
    return s if s.nested is not None else replace(s, nested=parse_nested(cfg.nested))


def _headline(run: EvaluationRun, gt: Mapping[str, Any],
              folds: Sequence[FoldFacts]) -> CrossValHeadline:
    """The headline numbers of the pooled evaluation ``run`` of ``gt``."""
    result = run.result
    ap50 = {g: result.value("AP", "0.50", group=g) for g in HEADLINE_GROUPS
            if g in result.groups}
    cis = {g: [round(ci.low, 4), round(ci.high, 4)] for g, ci in run.intervals.items()}
    minutes = round(sum(f.train_minutes or 0 for f in folds), 2)
    return CrossValHeadline(ap50, cis, result.value("AP"), len(gt["images"]),
                            len(gt["annotations"]), minutes)


def run_crossval(s: CrossValSettings, log: Log = print) -> CrossValResult:
    """Run every fold, then evaluate the pooled out-of-fold detections (see module doc)."""
    record = run_record({**asdict(s), "nested": s.nested and format_nested(s.nested)})
    if s.resume and s.reuse is not None:
        raise ValueError("--resume continues a run that trains; a --reuse run has nothing to "
                         "resume (run it again)")
    if s.resume:
        snapshot = check_same_run(s.out, record, s.config, log)
        s = replace(s, resume=False) if snapshot is None else replace(s, config=snapshot)
    s = checked_settings(s)
    coco = merge_present(s.sample, s.splits)
    folds = assign_folds(coco, s.folds, s.seed)
    names = {im["id"]: im["file_name"] for im in coco["images"]}
    by_name = {names[i]: f for i, f in sorted(folds.items())}
    chosen = list(range(s.folds) if s.only_folds is None else s.only_folds)
    if s.reuse is not None and s.mine_from is not None:
        raise ValueError("mine_from trains new models; it cannot go with reuse")
    if s.int8 and s.reuse is None:
        raise ValueError("--int8 predicts with the int8 export of a finished run's fold "
                         "models: give --reuse RUN")
    source = s.reuse or s.mine_from  # same folds, a model for each
    earlier = None if source is None else reused_models(source, by_name, chosen)
    if s.resume:
        check_same_folds(s.out, by_name)
    if s.reuse is None:  # every fold trains with this text, even if the file changes
        s = snapshot_config(s)
    write_json_atomic(s.out / "train_val.json", coco, force=True)
    write_json_atomic(s.out / "folds.json", by_name, force=True, indent=1)
    write_run_record(s.out, record)
    runs = _run_folds(s, coco, folds, chosen, earlier, log)
    facts = tuple(f for f, _ in runs)
    dets = [d for _, fold_dets in runs for d in fold_dets]
    gt = subset_coco(coco, {i for i, f in folds.items() if f in set(chosen)})
    write_json_atomic(s.out / "oof.bbox.json", dets, force=True)
    run = evaluate_and_write(gt, dets, s.out / "eval", group_by="colour", part_level=True,
                             target_recall=DEFAULT_TARGET_RECALL, bootstrap=s.bootstrap,
                             force=True)
    stats = operator_box_stats(run, gt, dets)
    write_json_atomic(s.out / "eval" / "box_stats.json", [b.to_dict() for b in stats],
                      force=True, indent=1)
    res = CrossValResult(s.out, facts, _headline(run, gt, facts), run, stats,
                         fold_wise_picks(run, folds))
    write_json_atomic(s.out / "crossval.json", res.to_dict(), force=True, indent=2)
    if s.only_folds is None and s.reuse is None:  # into models this run trained on all folds
        prediction = (f"prediction max_single {s.max_single}, tta {','.join(s.tta) or 'none'}, "
                      f"scale {s.scale}, nested {format_nested(s.nested or KEEP)}, red polarity "
                      f"{'model spec' if s.red_polarity is None else s.red_polarity}")
        stamp_fold_models(run, [f.model for f in facts], prediction, f"crossval {s.out}", log)
    return res
