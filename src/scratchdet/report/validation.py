"""Validation in one step after prediction: evaluate, analyse, curves, summary-first report.

``scratchdet val`` predicts the photos into ``OUT/predict`` (:mod:`scratchdet.inference.run`)
and then calls :func:`validate_predictions`, which reuses the evaluate/analyze/report pieces:

- ``OUT/eval/``: :func:`~scratchdet.evaluation.workflow.evaluate_and_write` with the part level
  and the 0.95-recall pick, plus ``confidence.json`` (box- and part-level P/R/F1 by threshold);
- ``OUT/analysis/``: :func:`~scratchdet.evaluation.analyze.write_analysis`, boxes counted and
  drawn at the operating threshold;
- ``OUT/report.html``: :func:`val_report` (verdicts first); ``OUT/summary.json``: the numbers
  of its first screen.

Only the photos that were predicted are scored (predict's ``image_ids.json``, see
:func:`~scratchdet.evaluation.inputs.scope_inputs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchdet.evaluation.analyze import AnalysisOutput, write_analysis
from scratchdet.evaluation.box_stats import box_stats
from scratchdet.evaluation.confidence import PRF1Point, box_prf1, part_prf1
from scratchdet.evaluation.image_level import ThresholdPoint
from scratchdet.evaluation.inputs import GroundTruth, Scope, scope_inputs
from scratchdet.evaluation.outputs import check_evaluation_writable
from scratchdet.evaluation.verdict_threshold import DEFAULT_TARGET_RECALL
from scratchdet.evaluation.workflow import EvaluationRun, evaluate_and_write
from scratchdet.io import check_writable, write_json_atomic
from scratchdet.report.assemble import metrics_blocks, part_level_blocks, worst_photo_blocks
from scratchdet.report.html import Report, Table
from scratchdet.report.summary import (
    ap_sentence,
    band_blocks,
    group_blocks,
    prf1_blocks,
    summary_blocks,
    verdict_sentence,
)
from scratchdet.report.training import training_blocks

#: ``scratchdet predict``'s files, written into ``OUT/predict`` by the command.
PREDICTION_FILES = ("results.bbox.json", "image_ids.json", "verdicts.csv")


@dataclass(frozen=True)
class ValidationRun:
    """What :func:`validate_predictions` scored and wrote."""

    scope: Scope
    evaluation: EvaluationRun
    analysis: AnalysisOutput
    verdict: ThresholdPoint  # all parts at the operating threshold
    box_curve: tuple[PRF1Point, ...]
    part_curve: tuple[PRF1Point, ...]
    report: Path
    files: tuple[Path, ...]
    caught_elsewhere: int = 0  # caught parts failed only by boxes on no labelled scratch

    def summary_lines(self, how: str) -> list[str]:
        """The verdict line (``how``: where the threshold came from), then the AP line."""
        return [verdict_sentence(self.verdict, how, self.caught_elsewhere),
                ap_sentence(self.evaluation.result)]


def check_val_writable(out: str | Path, force: bool) -> None:
    """Raise ``FileExistsError`` when a file of a validation is in ``out`` and ``force`` is
    False (before anything is predicted)."""
    out = Path(out)
    for name in PREDICTION_FILES:
        check_writable(out / "predict" / name, force)
    check_evaluation_writable(out / "eval", True, force)
    for path in (out / "eval" / "confidence.json", out / "analysis" / "analysis.json",
                 out / "report.html", out / "summary.json"):
        check_writable(path, force)


def validate_predictions(
    gt: GroundTruth,
    predict_dir: str | Path,
    images_dir: str | Path,
    out: str | Path,
    *,
    threshold: float,
    how: str,
    model: Path | None = None,
    facts: Mapping[str, str] | None = None,
    group_by: str | None = "colour",
    force: bool = False,
) -> ValidationRun:
    """Score ``predict_dir``'s results against ``gt``, write the evaluation, the analysis,
    the curves and the report into ``out``.

    Args:
        gt: the ground truth (a COCO json path, dict or Dataset).
        predict_dir: ``scratchdet predict``'s output folder (results and ``image_ids.json``).
        images_dir: the photos (drawn in the worst-photo gallery).
        out: the validation folder.
        threshold: the operating threshold (verdicts, analysis counts, curves' marker).
        how: where ``threshold`` came from, in words.
        model: the model file (its run folder's training curves, when it has them).
        facts: a few lines about the run for the report's last section (model, runtime...).
        group_by: image attribute of the subgroup columns (None: only "all").
        force: overwrite existing files.

    Raises:
        ValueError, FileNotFoundError: bad inputs (from the evaluator); FileExistsError.
    """
    out = Path(out)
    scope = scope_inputs(gt, Path(predict_dir) / "results.bbox.json")
    evaluation = evaluate_and_write(scope.gt, scope.detections, out / "eval", group_by=group_by,
                                    part_level=True, target_recall=DEFAULT_TARGET_RECALL,
                                    force=force)
    analysis = write_analysis(scope.gt, scope.detections, images_dir, out / "analysis",
                              score_thr=threshold, group_by=group_by, force=force)
    part = evaluation.result.part_level
    assert part is not None  # asked for above
    box_curve, part_curve = box_prf1(scope.gt, scope.detections), part_prf1(part)
    verdict = part.at(threshold)
    elsewhere = box_stats(scope.gt.coco, scope.detections, threshold).caught_elsewhere
    files = [*evaluation.files, *analysis.files, write_json_atomic(
        out / "eval" / "confidence.json",
        {"boxes": [p.to_dict() for p in box_curve], "parts": [p.to_dict() for p in part_curve]},
        force, indent=1)]
    report = val_report(evaluation.result.to_dict(), out / "analysis", threshold, how,
                        box_curve, part_curve, model, facts, elsewhere=elsewhere)
    files.append(report.write(out / "report.html", force))
    files.append(write_json_atomic(out / "summary.json",
                                   _summary(evaluation, verdict, how, elsewhere), force, indent=1))
    return ValidationRun(scope, evaluation, analysis, verdict, box_curve, part_curve,
                         out / "report.html", tuple(files), elsewhere)


def _summary(evaluation: EvaluationRun, verdict: ThresholdPoint, how: str,
             elsewhere: int) -> dict[str, Any]:
    result = evaluation.result
    return {"threshold": verdict.threshold, "threshold_source": how,
            "scratched": verdict.scratched, "caught": verdict.caught,
            "caught_elsewhere": elsewhere, "clean": verdict.clean,
            "rejected": verdict.rejected, "AP": result.value("AP"),
            "AP50": {g: result.value("AP", "0.50", group=g) for g in result.groups}}


def val_report(metrics: Mapping[str, Any], analysis_dir: Path | None, threshold: float,
               how: str, box_curve: Sequence[PRF1Point] = (),
               part_curve: Sequence[PRF1Point] = (), model: Path | None = None,
               facts: Mapping[str, str] | None = None, title: str | None = None,
               elsewhere: int = 0) -> Report:
    """The summary-first report: verdicts and confusion matrix, P/R/F1 by confidence, the COCO
    table, per-group and per-band views, the part level, the worst photos, training curves."""
    n = sum(1 for _ in (metrics.get("part_level") or {}).get("photos", []))
    report = Report(title or f"scratchdet val: {n} photos at threshold {threshold:.4g}")
    report.add_section("Summary", *summary_blocks(metrics, threshold, how, elsewhere))
    report.add_section("Precision, recall and F1 by confidence",
                       *prf1_blocks(box_curve, part_curve, threshold))
    report.add_section("COCO metrics", *metrics_blocks(metrics))
    report.add_section(f"By {metrics.get('group_by') or 'group'}",
                       *group_blocks(metrics, threshold))
    report.add_section("By size band", *band_blocks(metrics))
    if metrics.get("part_level"):
        report.add_section("Part level by threshold", *part_level_blocks(metrics["part_level"]))
    if analysis_dir is not None:
        report.add_section("Worst photos", *worst_photo_blocks(analysis_dir))
    report.add_section("Training curves", *training_blocks(model))
    if facts:
        report.add_section("This run", Table(["", ""], [[k, v] for k, v in facts.items()]))
    return report
