"""``run_demo``: the demo's steps in order, the report, and the headline numbers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scratchdet.artifact import stamp_threshold
from scratchdet.data.records import Dataset
from scratchdet.demo import pipeline as steps
from scratchdet.demo import sections
from scratchdet.demo.pipeline import FINAL_NOTE, HEADLINE_GROUPS, DemoResult, DemoSettings
from scratchdet.evaluation.image_level import ThresholdPoint
from scratchdet.evaluation.verdict_threshold import DEFAULT_TARGET_RECALL, threshold_from
from scratchdet.io import write_json_atomic
from scratchdet.report import Image, build_report
from scratchdet.structures import DEFAULT_TILE_SIZE


def run_demo(s: DemoSettings, log: Callable[[str], None] = print) -> DemoResult:
    """Run every step of the demo into ``s.out``; see :mod:`scratchdet.demo.pipeline`."""
    start = time.perf_counter()
    out = s.out
    res = DemoResult(out)
    if s.tta:
        res.headline["tta"] = ",".join(s.tta)
    train, val = steps.sample_data(s.sample, "train"), steps.sample_data(s.sample, "val")
    cfg = steps.train_config(s) if s.model is None else None  # fail early on a bad config
    log(f"1/5 dataset stats: {len(train)} train photos, {len(val)} val photos")
    res.files["stats"] = steps.write_stats_step(s.sample, out / "stats")
    log("2/5 training")
    model, run_dir, facts = steps.train_step(s, log)
    res.files["model"] = model
    res.headline["training_minutes"] = facts["minutes"]
    if s.final:
        res.notes.append(FINAL_NOTE)
        log(f"3/5 {FINAL_NOTE}")
    else:
        log("3/5 predicting the val photos, evaluating, ranking the worst")
        log(_evaluate(s, val, model, res))
    _stamp(s, model, res, log)
    if s.benchmark:
        log("4/5 benchmark")
        photos = [r.path for r in val.present if r.path is not None][: s.benchmark_photos]
        bench = steps.benchmark_step(model, photos, out / "benchmark", s.tta)
        res.files["benchmark"] = out / "benchmark"
        res.headline["benchmark"] = bench.headline
    else:
        log("4/5 benchmark skipped (--no-benchmark)")
    tile = cfg.tile_size if cfg is not None else DEFAULT_TILE_SIZE
    synth = steps.synthesis_step(train, tile, out / "synthesis.png", log)
    synthesis = (cfg.tile_options.get("synthesis") or {}).get("enabled") if cfg else None
    if synth is not None and synthesis is False:
        res.notes.append("the synthesis preview shows copy-paste at its default settings; "
                         "this training config switches synthesis off")
    log("5/5 report")
    res.headline["demo_minutes"] = (time.perf_counter() - start) / 60
    res.files["report"] = _report(s, res, model, run_dir, facts, synth, s.benchmark)
    res.files["summary"] = write_json_atomic(
        out / "summary.json", {"headline": res.headline, "notes": res.notes,
                               "files": {k: str(v) for k, v in res.files.items()}},
        force=True, indent=2)
    return res


def _stamp(s: DemoSettings, model: Path, res: DemoResult, log: Callable[[str], None]) -> None:
    """The trained model carries its operating threshold: with --final the pick of
    ``threshold_from`` (a cross-validation's evaluation), else the pick on the val photos."""
    if s.model is not None:  # a model given to evaluate is left as it is
        return
    if s.threshold_from is not None:
        value, how = threshold_from(s.threshold_from, s.threshold_group)
    elif not s.final and "verdict_threshold" in res.headline:
        value = res.headline["verdict_threshold"]
        how = (f"demo {s.out}: highest threshold catching >= {DEFAULT_TARGET_RECALL:g} of the "
               f"scratched parts on the {res.headline['val_photos']} val photos")
    else:
        res.notes.append("the model keeps the default threshold 0.5: give --threshold-from "
                         "a cross-validation's eval/ to ship the threshold it picked")
        return
    spec = stamp_threshold(model, value, how)
    res.headline["model_threshold"] = spec.threshold
    log(f"the model operates at threshold {spec.threshold:.4g} ({how})")


def _evaluate(s: DemoSettings, val: Dataset, model: Path, res: DemoResult) -> str:
    """Predict + evaluate + analyse the val photos; headline numbers into ``res``."""
    out = s.out
    pred = steps.predict_step(model, val, s.sample, out / "predict", s.tta)
    evaluation = steps.evaluate_step(val, out / "predict" / "results.bbox.json", s.sample, out)
    result, cis = evaluation.result, evaluation.intervals
    res.files.update(predict=out / "predict", eval=out / "eval", analysis=out / "analysis")
    for g in (g for g in HEADLINE_GROUPS if g in result.groups):
        res.headline[f"val_AP50_{g}"] = result.value("AP", "0.50", group=g)
        if g in cis and cis[g].valid:
            res.headline[f"val_AP50_{g}_ci95"] = [round(cis[g].low, 3), round(cis[g].high, 3)]
    res.headline["val_AP_all"] = result.value("AP")
    pick = result.part_level.groups["all"].target if result.part_level else None
    if pick is not None and pick.point is not None:  # for predict/serve --threshold-from
        res.headline["verdict_threshold"] = pick.point.threshold
        warning = costly_pick_note(pick.point)
        if warning:
            res.notes.append(warning)
    res.headline["val_photos"] = len(val)
    res.headline["predict_s_per_photo"] = pred["s_per_photo"]
    return evaluation.full_text


def costly_pick_note(point: ThresholdPoint) -> str | None:
    """A note when the val pick rejects more than half of the clean val parts (the faintest
    scratched part sets it), else ``None``."""
    if not point.clean or 2 * point.rejected <= point.clean:
        return None
    return (f"the val pick {point.threshold:.4g} catches {point.caught}/{point.scratched} "
            f"scratched val parts but rejects {point.rejected}/{point.clean} clean ones (the "
            "faintest scratched part sets it): give --threshold-from a cross-validation's eval/ "
            "(demo --final or export) to ship a steadier threshold")


def _report(s: DemoSettings, res: DemoResult, model: Path, run_dir: Path | None,
            facts: dict[str, Any], synth: Path | None, bench: bool) -> Path:
    """The HTML report: the evaluation folders, the model, synthesis and benchmark sections."""
    out = s.out
    if s.final:
        report = build_report(stats_dir=out / "stats", title="scratchdet demo (final model)")
    else:
        report = build_report(out / "eval", out / "analysis", out / "stats",
                              title=f"scratchdet demo: val ({res.headline['val_photos']} photos)")
    blocks = [sections.headline_block(res.headline), *map(sections.note_block, res.notes),
              *sections.model_blocks(model, facts, run_dir)]
    report.add_section("Model", *blocks)
    report.sections.insert(1, report.sections.pop())  # second, after the dataset
    if synth is not None:
        report.add_section("Synthesis preview", Image.from_path(
            synth, "real scratches (left, green) next to pasted ones (right, magenta)"))
    if bench:
        report.add_section("Benchmark", *sections.benchmark_blocks(out / "benchmark"))
    return report.write(out / "report.html", force=True)
