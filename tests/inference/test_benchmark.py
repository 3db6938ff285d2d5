"""``scratchdet benchmark``: fields of benchmark.json, the headline format, bad inputs.

Tiny settings (one photo at 1/8 scale, a small seed input) keep it quick; no timing asserts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.inference.benchmark import PHASES, find_photos, summarize

runner = CliRunner()
HEADLINE = re.compile(
    r"scratchdet \(lite0_fpn_fast, onnx\): \d+\.\d\d s/photo \| seed cascade x101 @256x160 "
    r"\(torch\): \d+\.\d\d s/photo \| \d+\.\dx faster"
)


def test_benchmark_on_one_photo_writes_json_and_markdown(sample: Path, tmp_path: Path) -> None:
    photo = sample / "val" / "white_DSC_0439.JPG"
    out = tmp_path / "bench"
    result = runner.invoke(app, [
        "benchmark", str(photo), "--model", "lite0_fpn_fast", "--runtime", "onnx",
        "--scale", "0.125", "--repeat", "1", "--warmup", "0", "--seed-size", "256x160",
        "--tta", "h", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert HEADLINE.fullmatch(lines[0]), lines[0]
    assert lines[1].startswith("ONNX Runtime vs PyTorch eager (lite0_fpn_fast): ")
    data = json.loads((out / "benchmark.json").read_text())
    assert data["headline"] == lines[0]
    assert set(data["runs"]) == {"onnx", "torch"} and data["seed"]["weights"] == "random"
    for run in [*data["runs"].values(), data["seed"]]:
        assert set(run["phases"]) == set(PHASES)
        assert all(set(v) == {"mean", "median", "p90"} for v in run["phases"].values())
        assert run["predictions"] == 1 and run["peak_rss_mb"] > 50
        assert run["photos_per_s"] > 0 and run["cpu_s_per_photo"] > 0
    assert data["runs"]["onnx"]["mean_tiles"] == 1  # the 1/8-scale region fits one input
    assert data["speedup_vs_seed"] == pytest.approx(
        data["seed_s_per_photo"] / data["s_per_photo"])
    assert set(data["onnx_vs_torch"]) == {"total", "model"}
    md = (out / "benchmark.md").read_text()
    assert data["headline"] in md and "| lite0_fpn_fast (onnx) |" in md
    assert data["settings"]["tta"] == ["h"] and "test-time flips h," in md


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    result = runner.invoke(app, ["benchmark", str(tmp_path / "*.jpg")])
    assert result.exit_code == 2 and "no photos found" in result.output
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    result = runner.invoke(app, ["benchmark", str(photo), "--checkpoint",
                                 str(tmp_path / "missing.ckpt")])
    assert result.exit_code == 2 and "missing.ckpt" in result.output
    result = runner.invoke(app, ["benchmark", str(photo), "--seed-size", "big"])
    assert result.exit_code == 2 and "--seed-size" in result.output
    result = runner.invoke(app, ["benchmark", str(photo), "--tta", "r90"])
    assert result.exit_code == 2 and "unknown flip 'r90'" in result.output
    with pytest.raises(FileNotFoundError, match="no photos"):
        find_photos(tmp_path / "empty")


def test_find_photos_and_summary(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.jpg", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in find_photos(tmp_path)] == ["a.jpg", "b.JPG"]
    assert [p.name for p in find_photos(f"{tmp_path}/b*")] == ["b.JPG"]
    stats = summarize([4.0, 1.0, 2.0, 3.0])
    assert stats == {"mean": 2.5, "median": 2.5, "p90": pytest.approx(3.7)}
