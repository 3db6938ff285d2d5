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
from scratchdet.io import check_writable, write_bytes_atomic, write_json_atomic, write_text_atomic

TABLE_FILES = ("metrics.md", "metrics.json", "metrics.csv", "pr_curves.png")
PART_LEVEL_FILES = ("part_level.md", "part_level_roc.png", "part_level_thresholds.png")


def evaluation_paths(out_dir: str | Path, part_level: bool) -> list[Path]:
    """The files :func:`write_evaluation` writes into ``out_dir``, in writing order."""
    names = TABLE_FILES + (PART_LEVEL_FILES if part_level else ())
    return [Path(out_dir) / name for name in names]


def check_evaluation_writable(out_dir: str | Path, part_level: bool, force: bool) -> None:
    """Raise ``OutputExistsError`` (a ``FileExistsError``) if a file of the evaluation is
    already in ``out_dir`` and ``force`` is False."""
    for path in evaluation_paths(out_dir, part_level):
        check_writable(path, force)


def write_evaluation(
    result: EvaluationResult,
    out_dir: str | Path,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    force: bool = False,
) -> list[Path]:
    """Write the result files into ``out_dir`` (atomically; existing files need ``force``,
    checked for every file before anything is written)."""
    out = Path(out_dir)
    check_evaluation_writable(out, result.part_level is not None, force)
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
