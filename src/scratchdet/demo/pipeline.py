"""The demo pipeline: stats, training, val prediction + evaluation, benchmark, report.

Each step writes into its own folder under ``out``:

- ``stats/``: dataset stats and box-size plots of the sample (train + val);
- ``runs/<time stamp>/``: the training run (``scratchdet train``'s layout, ``model.pt``);
- ``predict/``: COCO results, verdicts and image ids of the val photos;
- ``eval/``: the evaluator's table and part-level view (``group_by`` colour);
- ``analysis/``: the photos ranked worst first, overlays and crops;
- ``benchmark/``: CPU latency per photo (:mod:`scratchdet.inference.benchmark`);
- ``synthesis.png``, ``report.html`` and ``summary.json`` (the headline numbers).

With ``final=True`` the model is trained on train + val photos; there is then no held-out
photo, so prediction, evaluation and analysis are skipped and the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratchdet.config import load_config
from scratchdet.data.records import Dataset, load_coco_records
from scratchdet.data.split import merge_present
from scratchdet.data.stats import compute_stats, write_stats
from scratchdet.data.synthesis import preview_synthesis
from scratchdet.data.tiles import TileDataset
from scratchdet.evaluation.analyze import write_analysis
from scratchdet.evaluation.verdict_threshold import DEFAULT_TARGET_RECALL
from scratchdet.evaluation.workflow import EvaluationRun, evaluate_and_write
from scratchdet.inference import benchmark as bench
from scratchdet.inference import run
from scratchdet.io import write_json_atomic
from scratchdet.training.config import TrainConfig
from scratchdet.training.fit import fit

#: ``--set`` overrides of each schedule on top of the config file.
SCHEDULES: dict[str, list[str]] = {
    # half the config's schedule (16 x 64 steps of two 512 px tiles): 6.4-8 min of training
    # on 2 idle cores (29 and 27 Nov), so that the whole demo stays under 20 min.
    "short": ["epochs=16"],  # the EMA then starts at step 512 (cpu_fast.yaml: half the steps)
    # the config's own schedule (configs/cpu_fast.yaml: 48 epochs of the cascade with an EMA
    # of the weights over the second half, chosen by cross-validation, AP50 0.756 mean of
    # three seeds): ~17-24 min, the measured time of its 3072 steps per cross-validation fold.
    "full": [],
}
FINAL_NOTE = ("--final: the model was trained on train + val photos, so there is no held-out "
              "evaluation; choose the recipe on val first, then ship with --final.")
HEADLINE_GROUPS = ("all", "white", "red")


@dataclass(frozen=True)
class DemoSettings:
    """What ``scratchdet demo`` runs (see its ``--help``)."""

    sample: Path
    out: Path
    config: Path = Path("configs/cpu_fast.yaml")
    schedule: str = "short"
    final: bool = False
    overrides: Sequence[str] = ()  # applied after the schedule's
    benchmark: bool = True
    benchmark_photos: int = 3
    model: Path | None = None  # skip training, use this model.pt / .ckpt
    tta: tuple[str, ...] = ()  # test-time flips of the val prediction and the benchmark
    threshold_from: Path | None = None  # --final: an evaluation whose pick the model carries
    threshold_group: str = "all"


@dataclass
class DemoResult:
    """Where things went and the headline numbers."""

    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Log = Callable[[str], None]


def sample_data(sample: Path, split: str) -> Dataset:
    """``annotations/<split>.json`` with the photos of ``<split>/``, only those present."""
    ann, images = sample / "annotations" / f"{split}.json", sample / split
    if not ann.is_file() or not images.is_dir():
        raise FileNotFoundError(f"{sample}: expected annotations/{split}.json and {split}/ "
                                "(the scratch sample layout; see scratchdet data fetch-sample)")
    data = load_coco_records(ann, images, only_present=True)
    if not data.images:
        raise FileNotFoundError(f"{images}: none of the photos of {ann} is there")
    return data


def write_stats_step(sample: Path, out: Path) -> Path:
    """Stats (+ plots) of the train and val splits, with what is present on disk."""
    splits = {s: load_coco_records(sample / "annotations" / f"{s}.json", sample / s)
              for s in ("train", "val")}
    write_stats(compute_stats(splits), out)
    return out


def merged_train_val(sample: Path, out: Path) -> Path:
    """A COCO file of the train + val photos present (file names ``train/...``, ``val/...``)."""
    return write_json_atomic(out, merge_present(sample, ("train", "val")), force=True)


def train_config(s: DemoSettings) -> TrainConfig:
    """The training config: the file, the schedule, the sample paths, then ``overrides``."""
    if s.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {s.schedule!r}")
    if not s.config.is_file():
        raise FileNotFoundError(f"{s.config}: training config not found (run from the repo "
                                "root or pass --config)")
    ann = s.sample / "annotations"
    paths = [f"val_annotations={ann / 'val.json'}", f"val_images={s.sample / 'val'}",
             f"output_dir={s.out / 'runs'}"]
    if s.final:
        merged = merged_train_val(s.sample, s.out / "train_val.json")
        paths += [f"train_annotations={merged}", f"train_images={s.sample}",
                  "val_every_n_epochs=1000"]  # no held-out photo to validate on
    else:
        paths += [f"train_annotations={ann / 'train.json'}",
                  f"train_images={s.sample / 'train'}"]
    return load_config(TrainConfig, s.config, [*SCHEDULES[s.schedule], *paths, *s.overrides])


def train_step(s: DemoSettings, log: Log) -> tuple[Path, Path | None, dict[str, Any]]:
    """Train (or take ``s.model``); the model file, the run folder and training facts."""
    if s.model is not None:
        if not s.model.is_file():
            raise FileNotFoundError(f"{s.model}: model not found")
        log(f"training skipped: using {s.model}")
        run_dir = s.model.parent if (s.model.parent / "config.yaml").is_file() else None
        return s.model, run_dir, {"minutes": None, "source": str(s.model)}
    cfg = train_config(s)
    log(f"training {cfg.model} ({s.schedule} schedule{', train+val' if s.final else ''}) ...")
    start = time.perf_counter()
    result = fit(cfg)
    minutes = (time.perf_counter() - start) / 60
    assert result.model_path is not None  # one process: rank 0
    log(f"trained in {minutes:.1f} min: {result.model_path}")
    facts = {"minutes": minutes, "steps": result.global_step, "run_dir": str(result.run_dir),
             "best_checkpoint": str(result.best_checkpoint or ""), "metrics": result.metrics}
    return result.model_path, result.run_dir, facts


def predict_step(model: Path, val: Dataset, sample: Path, out: Path,
                 tta: tuple[str, ...] = ()) -> dict[str, Any]:
    """Predict the val photos (scores from 0, as training's validation; ``tta``: test-time
    flips); COCO results."""
    photos = [r.path for r in val.present if r.path is not None]
    ids = run.image_ids(photos, sample / "annotations" / "val.json")
    return run.summary(run.predict_for_evaluation(model, photos, ids, out, tta=tta), 0.5)


def evaluate_step(val: Dataset, dets: Path, sample: Path, out: Path,
                  bootstrap: int = 200) -> EvaluationRun:
    """Evaluator table + part level (``out/eval``), AP50 bootstrap intervals and the
    worst-photo analysis (``out/analysis``)."""
    evaluation = evaluate_and_write(val, dets, out / "eval", group_by="colour", part_level=True,
                                    target_recall=DEFAULT_TARGET_RECALL, bootstrap=bootstrap,
                                    force=True)
    write_analysis(val, dets, sample / "val", out / "analysis", force=True)
    return evaluation


def benchmark_step(model: Path, photos: Sequence[Path], out: Path,
                   tta: tuple[str, ...] = ()) -> bench.BenchmarkResult:
    """CPU latency on a few photos (``tta``: with test-time flips), written to ``out``."""
    settings = bench.BenchmarkSettings(checkpoint=model, seed_photos=1, compare_runtimes=True,
                                       tta=tuple(tta))
    result = bench.run_benchmark(list(photos), settings)
    bench.write_outputs(result, out)
    return result


def synthesis_step(train: Dataset, cfg_tile_size: int, out: Path, log: Log) -> Path | None:
    """Pasted scratches next to real ones, from the training tiles (None if synthesis is off)."""
    try:
        return Path(preview_synthesis(TileDataset(train, tile_size=cfg_tile_size), out))
    except ValueError as err:
        log(f"synthesis preview skipped: {err}")
        return None
