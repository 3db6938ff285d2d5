"""Report sections of the demo that ``scratchdet.report.build_report`` does not make."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scratchdet.inference.torch_runtime import load_torch_model
from scratchdet.report import Html, Image, Table, Text, markdown_blocks
from scratchdet.report.html import Block
from scratchdet.report.training import read_training_log, training_curves_png


def loss_curve_png(run_dir: Path) -> bytes | None:
    """The run's training curves (None when it has no CSV log): see
    :mod:`scratchdet.report.training`."""
    return training_curves_png(read_training_log(run_dir))


def model_blocks(model_path: Path, facts: Mapping[str, Any], run_dir: Path | None) -> list[Block]:
    """Preset, parameters, training time and steps, loss curve, the config used."""
    model, spec = load_torch_model(model_path)
    params = sum(p.numel() for p in model.parameters())
    minutes = facts.get("minutes")
    rows = [["preset", spec.preset], ["parameters", f"{params:,}"],
            ["model file", str(model_path)],
            ["training time", "n/a" if minutes is None else f"{minutes:.1f} min"],
            ["steps", str(facts.get("steps", "n/a"))],
            ["tiles", f"{spec.tile_size} px, overlap {spec.tile_overlap}"]]
    blocks: list[Block] = [Table(["", ""], rows, caption="Model and training")]
    png = loss_curve_png(run_dir) if run_dir is not None else None
    if png is not None:
        blocks.append(Image(png, caption="training loss (sum of the detector's losses)"))
    config = run_dir / "config.yaml" if run_dir is not None else None
    if config is not None and config.is_file():
        blocks += ["<h3>Training config</h3>", Text(config.read_text(encoding="utf-8"), pre=True)]
    return blocks


def benchmark_blocks(bench_dir: Path) -> list[Block]:
    """The benchmark's markdown tables (``benchmark.md``)."""
    md = bench_dir / "benchmark.md"
    if not md.is_file():
        return [Text("benchmark not run")]
    return markdown_blocks(md.read_text(encoding="utf-8"), bench_dir)


def headline_block(headline: Mapping[str, Any]) -> Block:
    """The headline numbers as a small table."""
    rows = [[k, _headline_value(v)] for k, v in headline.items()]
    return Table(["", ""], rows, caption="Headline")


def _headline_value(value: Any) -> str:
    """Floats to 3 decimals, missing values as 'n/a', strings as they are."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return value if isinstance(value, str) else json.dumps(value)


def note_block(text: str) -> Block:
    return Html(f"<p><b>Note:</b> {text}</p>")
