"""Evaluation: one evaluator (:func:`evaluate`) used by training, the CLI and the report.

>>> result = evaluate("annotations/test.json", "results.bbox.json")  # doctest: +SKIP
>>> result.value("AP", "0.50", band="0-40^2", group="red")  # doctest: +SKIP
"""

from scratchdet.evaluation.bands import SizeBand, band_from_sides, parse_bands, seed_bands
from scratchdet.evaluation.evaluator import evaluate
from scratchdet.evaluation.image_level import PartLevelResult, ThresholdPoint, auroc
from scratchdet.evaluation.result import EvaluationResult, GroupSummary

__all__ = [
    "EvaluationResult",
    "GroupSummary",
    "PartLevelResult",
    "SizeBand",
    "ThresholdPoint",
    "auroc",
    "band_from_sides",
    "evaluate",
    "parse_bands",
    "seed_bands",
]
