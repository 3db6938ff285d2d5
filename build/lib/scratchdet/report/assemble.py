"""Assemble a :class:`Report` from output folders of other commands.

* ``eval_dir``: a ``scratchdet evaluate --out`` folder (``metrics.json``);
* ``analysis_dir``: a ``scratchdet analyze`` folder (``analysis.json``, ``worst/``);
* ``stats_dir``: a dataset-stats folder (``stats.md`` + PNGs, as ``scratchdet.data.stats``
  writes it); without it the dataset section is drawn from the evaluation's GT counts.

Every input is optional; sections without an input are left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scratchdet.evaluation.config import DEFAULT_THRESHOLDS
from scratchdet.evaluation.image_level import PartLevelResult
from scratchdet.evaluation.plots import pr_curves_png, roc_png, thresholds_png
from scratchdet.evaluation.result import part_level_rows
from scratchdet.report.html import Block, Gallery, Image, Report, Table, Text, markdown_blocks


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found (expected a scratchdet output file)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None


def dataset_blocks_from_stats(stats_dir: Path) -> list[Block]:
    """``stats.md`` (tables and plots) plus any PNG it does not reference."""
    md = stats_dir / "stats.md"
    if not md.is_file():
        raise FileNotFoundError(f"{md}: not found (expected a dataset-stats folder)")
    text = md.read_text(encoding="utf-8")
    blocks = markdown_blocks(text, stats_dir)
    blocks += [Image.from_path(p, p.stem) for p in sorted(stats_dir.glob("*.png"))
               if p.name not in text]
    return blocks


def dataset_blocks_from_metrics(metrics: Mapping[str, Any]) -> list[Block]:
    """Photos, scratched/clean and GT boxes per band, per subgroup, from metrics.json."""
    bands = [b["name"] for b in metrics["bands"]]
    rows = []
    for name, s in metrics["summaries"].items():
        rows.append([name, str(s["images"]), str(s["scratched"]), str(s["images"] - s["scratched"]),
                     *(str(s["boxes"][b]) for b in bands)])
    header = ["group", "photos", "scratched", "clean", *(f"boxes {b}" for b in bands)]
    return [Text(f"Ground truth: {metrics['source']}"), Table(header, rows)]


#: What the report prints for a metric that is undefined (COCOeval's -1: no GT box there).
EMPTY_CELL = "\u2013"


def cell(value: float | None, digits: int = 3) -> str:
    """A metric for a table: ``digits`` decimals, :data:`EMPTY_CELL` when undefined (None or
    COCOeval's negative "no ground truth" value)."""
    return EMPTY_CELL if value is None or value < 0 else f"{value:.{digits}f}"


def metrics_blocks(metrics: Mapping[str, Any]) -> list[Block]:
    """The AP/AR table and the PR curves."""
    table = metrics["table"]
    note = (f"COCOeval bbox, maxDets {metrics['max_dets']}, subgroups by "
            f"{metrics['group_by']}; {EMPTY_CELL} means no GT box in that band.")
    rows = [[EMPTY_CELL if c.startswith("-1.") else c for c in row] for row in table[1:]]
    return [Text(note), Table(table[0], rows), Image(pr_curves_png(metrics), width=600)]


def part_level_blocks(
    part_dict: Mapping[str, Any], thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> list[Block]:
    """AUROC per subgroup, the threshold table, notes and target picks, and the curves."""
    part = PartLevelResult.from_dict(part_dict)
    auc_rows = [[g.name, str(g.scratched), str(g.clean),
                 "undefined" if g.auroc is None else f"{g.auroc:.3f}"]
                for g in part.groups.values()]
    rows = part_level_rows(part, thresholds, list(part.groups))
    blocks: list[Block] = [
        Text("A photo's score is its highest detection score (0 without detections); it is "
             "scratched when it has a GT box; a part is rejected when its score >= threshold."),
        Table(["group", "scratched", "clean", "AUROC"], auc_rows),
        Table(rows[0], rows[1:], caption="scratched parts caught / clean parts rejected"),
    ]
    for g in part.groups.values():
        blocks += [Text(f"Note: {n}") for n in g.notes]
        if g.target is not None:
            blocks.append(Text(f"Target {g.name}: {g.target.message}"))
    blocks += [Image(roc_png(part_dict), width=480), Image(thresholds_png(part_dict), width=600)]
    return blocks


def worst_photo_blocks(analysis_dir: Path, max_crops: int = 6) -> list[Block]:
    """Overlays and crops of the worst photos, and the per-photo table's head."""
    data = _read_json(analysis_dir / "analysis.json")
    blocks: list[Block] = [Text(
        f"Photos ranked by per-photo AP50 (ties: misses, then false boxes), detections with "
        f"score >= {data['score_thr']}; {data['photos_present']} of {data['photos_total']} "
        "photos are on disk and can be drawn. GT green, matched blue, false red.")]
    seen: set[str] = set()
    for e in data["worst"]:
        if e["file_name"] in seen:
            continue
        seen.add(e["file_name"])
        blocks.append(_photo_gallery(analysis_dir, e, max_crops))
    cols = ["file_name", "group", "ap50", "gt_boxes", "misses", "false_boxes", "present"]
    rows = [["n/a" if p[c] is None else (f"{p[c]:.3f}" if c == "ap50" else str(p[c]))
             for c in cols] for p in data["photos"][:20]]
    blocks.append(Table(cols, rows, caption="20 worst photos (all photos, on disk or not)"))
    return blocks


def _photo_gallery(analysis_dir: Path, entry: Mapping[str, Any], max_crops: int) -> Gallery:
    """One photo's overlay, then its crops (each file once, in order), in one row."""
    ap = "n/a (clean)" if entry["ap50"] is None else f"{entry['ap50']:.3f}"
    title = (f"#{entry['rank']} {entry['file_name']} ({entry['group'] or 'no group'}): AP50 "
             f"{ap}, {entry['misses']} missed of {entry['gt_boxes']}, "
             f"{entry['false_boxes']} false boxes")
    crops = list(dict.fromkeys(entry["crops"]))[:max_crops]
    images = [Image.from_path(analysis_dir / entry["overlay"], "whole photo", width=800)]
    images += [Image.from_path(analysis_dir / c, f"crop {j + 1} of {entry['file_name']}")
               for j, c in enumerate(crops)]
    return Gallery(title, images)


def build_report(
    eval_dir: str | Path | None = None,
    analysis_dir: str | Path | None = None,
    stats_dir: str | Path | None = None,
    title: str = "scratchdet report",
) -> Report:
    """A report with the sections its inputs allow (dataset, metrics, part level, worst)."""
    if eval_dir is None and analysis_dir is None and stats_dir is None:
        raise ValueError("nothing to report: give an evaluation, analysis or stats folder")
    report = Report(title)
    metrics = _read_json(Path(eval_dir) / "metrics.json") if eval_dir is not None else None
    if stats_dir is not None:
        report.add_section("Dataset", *dataset_blocks_from_stats(Path(stats_dir)))
    elif metrics is not None:
        report.add_section("Dataset", *dataset_blocks_from_metrics(metrics))
    if metrics is not None:
        report.add_section("Metrics", *metrics_blocks(metrics))
        if metrics.get("part_level"):
            report.add_section("Part level", *part_level_blocks(metrics["part_level"]))
    if analysis_dir is not None:
        report.add_section("Worst photos", *worst_photo_blocks(Path(analysis_dir)))
    return report
