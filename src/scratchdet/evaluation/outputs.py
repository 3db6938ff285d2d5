"""Write an :class:`EvaluationResult` to a folder: markdown, JSON, CSV and plots.

Files: ``metrics.md``, ``metrics.json`` (everything, incl. PR curves and the part level),
``metrics.csv``, ``pr_curves.png`` and, with the part level, ``part_level.md``,
``part_level_roc.png``, ``part_level_thresholds.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scratchdet.evaluation.config import DEFAULT_THRESHOLDS
from scratchdet.evaluation.plots import pr_curves_png, roc_png, thresholds_png
from scratchdet.evaluation.result import EvaluationResult, part_level_text
from scratchdet.io import write_bytes_atomic, write_json_atomic, write_text_atomic


def write_evaluation(
    result: EvaluationResult,
    out_dir: str | Path,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    force: bool = False,
) -> list[Path]:
    """Write the result files into ``out_dir`` (atomically; existing files need ``force``)."""
    out = Path(out_dir)
    data = result.to_dict()
    files = [
        write_text_atomic(out / "metrics.md", f"# Evaluation of {result.source}\n\n"
                          + result.table_markdown(), force),
        write_json_atomic(out / "metrics.json", data, force, indent=1),
        write_text_atomic(out / "metrics.csv", result.table_csv(), force),
        write_bytes_atomic(out / "pr_curves.png", pr_curves_png(data), force),
    ]
    if result.part_level is not None:
        text = part_level_text(result.part_level, thresholds)
        files += [
            write_text_atomic(out / "part_level.md", f"```\n{text}```\n", force),
            write_bytes_atomic(out / "part_level_roc.png", roc_png(data["part_level"]), force),
            write_bytes_atomic(out / "part_level_thresholds.png",
                               thresholds_png(data["part_level"]), force),
        ]
    return files
