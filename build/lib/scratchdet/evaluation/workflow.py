"""Evaluate, write the files, and the texts: the one workflow of evaluate, the demo and crossval.

:func:`evaluate_and_write` runs :func:`~scratchdet.evaluation.evaluate`, writes its folder
(:func:`~scratchdet.evaluation.outputs.write_evaluation`), builds the printed text (the table,
then the part-level view) and, with ``bootstrap``, the AP50 bootstrap intervals per subgroup
(:func:`~scratchdet.evaluation.bootstrap.bootstrap_ap`).

>>> run = evaluate_and_write("test.json", "results.bbox.json", "eval",
...                          part_level=True, bootstrap=200)  # doctest: +SKIP
>>> print(run.full_text)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scratchdet.evaluation.bands import SizeBand
from scratchdet.evaluation.bootstrap import BootstrapCI, bootstrap_ap, bootstrap_text
from scratchdet.evaluation.config import DEFAULT_THRESHOLDS
from scratchdet.evaluation.evaluator import evaluate
from scratchdet.evaluation.inputs import Detections, GroundTruth
from scratchdet.evaluation.outputs import check_evaluation_writable, write_evaluation
from scratchdet.evaluation.result import EvaluationResult, part_level_text


@dataclass(frozen=True)
class EvaluationRun:
    """What :func:`evaluate_and_write` did.

    Attributes:
        result: the evaluator's result.
        text: the table, then (with the part level) a blank line and the part-level view.
        files: the files written (empty without an output folder).
        intervals: subgroup -> AP50 bootstrap interval (empty without ``bootstrap``).
        bootstrap_text: the one-line summary of ``intervals`` ("" without ``bootstrap``).
    """

    result: EvaluationResult
    text: str
    files: tuple[Path, ...] = ()
    intervals: Mapping[str, BootstrapCI] = field(default_factory=dict)
    bootstrap_text: str = ""

    @property
    def full_text(self) -> str:
        """``text``, then a newline and the bootstrap line when there is one."""
        return self.text + "\n" + self.bootstrap_text if self.bootstrap_text else self.text


def evaluation_text(result: EvaluationResult,
                    thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> str:
    """The table text, then a blank line and the part-level view when ``result`` has one."""
    text = result.table_text()
    if result.part_level is not None:
        text += "\n" + part_level_text(result.part_level, thresholds)
    return text


def evaluate_and_write(
    gt: GroundTruth,
    detections: Detections,
    out_dir: str | Path | None = None,
    *,
    bands: Sequence[SizeBand] | None = None,
    group_by: str | None = "colour",
    groups: Sequence[str] | None = None,
    max_dets: int = 100,
    part_level: bool = False,
    target_recall: float | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    bootstrap: int = 0,
    force: bool = False,
) -> EvaluationRun:
    """Evaluate ``detections`` against ``gt``, write the files, bootstrap AP50.

    Args:
        gt: ground truth (a Dataset, a COCO dict or a COCO json path).
        detections: COCO result dicts or a results json path.
        out_dir: folder for the evaluation files; None writes nothing.
        bands: size bands (None: the seed's).
        group_by: image attribute of the subgroup columns (None: only "all").
        groups: subgroup values to report, in order (None: every value present).
        max_dets: detections per photo kept by COCOeval (also for the bootstrap).
        part_level: add the part-level view (AUROC, thresholds).
        target_recall: with the part level, pick the highest threshold reaching it.
        thresholds: the rows of the part-level threshold table.
        bootstrap: photo resamples of the AP50 intervals per subgroup (0: none).
        force: overwrite existing files in ``out_dir``.

    Raises:
        FileExistsError: a file of the evaluation exists in ``out_dir`` and ``force`` is
            False (checked before anything is evaluated or written).
        ValueError, FileNotFoundError: bad or missing inputs (from the evaluator).
    """
    want_part = part_level or target_recall is not None
    if out_dir is not None:
        check_evaluation_writable(out_dir, want_part, force)
    result = evaluate(gt, detections, bands=bands, group_by=group_by, part_level=want_part,
                      groups=groups, max_dets=max_dets, target_recall=target_recall)
    files = () if out_dir is None else tuple(write_evaluation(result, out_dir, thresholds,
                                                              force))
    text = evaluation_text(result, thresholds)
    if not bootstrap:
        return EvaluationRun(result, text, files)
    cis = bootstrap_ap(gt, detections, group_by=group_by, samples=bootstrap, max_dets=max_dets)
    return EvaluationRun(result, text, files, cis, bootstrap_text(cis))
