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
from scratchdet.inference.benchmark import (
    PHASES,
    SEED_PRESET,
    BenchmarkResult,
    BenchmarkSettings,
    RunTiming,
    find_photos,
    summarize,
    summary_lines,
    to_markdown,
)

runner = CliRunner()
HEADLINE = re.compile(
    r"scratchdet \(lite0_fpn_fast, onnx\): \d+\.\d\d s/photo \| seed cascade x101 @256x160 "
    r"\(torch\): \d+\.\d\d s/photo \| \d+\.\dx faster"
)


def test_benchmark_on_one_photo_writes_json_and_markdown(sample: Path, tmp_path: Path) -> None:
    photo = sample / "val" / "white_DSC_0439.JPG"
    out = tmp_path / "bench"
    result = runner.invoke(app, [
        "benchmark", "lite0_fpn_fast", str(photo), "--runtime", "onnx",
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
    result = runner.invoke(app, ["benchmark", "lite0_fpn_fast", str(tmp_path / "*.jpg")])
    assert result.exit_code == 2 and "no photos found" in result.output
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    result = runner.invoke(app, ["benchmark", str(tmp_path / "missing.ckpt"), str(photo)])
    assert result.exit_code == 2 and "missing.ckpt: model file not found" in result.output
    result = runner.invoke(app, ["benchmark", str(photo)])
    assert result.exit_code == 2 and "missing IMAGES" in result.output
    result = runner.invoke(app, ["benchmark", "lite0_fpn_fast", str(photo), "--seed-size", "big"])
    assert result.exit_code == 2 and "--seed-size" in result.output
    result = runner.invoke(app, ["benchmark", "lite0_fpn_fast", str(photo), "--tta", "r90"])
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


def _timing(total: float, model: float, **seed: str) -> RunTiming:
    """A run whose every phase statistic is ``total`` except the model phase's."""
    phases = {p: dict.fromkeys(("mean", "median", "p90"), model if p == "model" else total)
              for p in PHASES}
    return RunTiming(phases, total, 2 * total, 1 / total, 1.0, 0.5, 900.0, True, 1,
                     [{"total": total, "photo": "a.jpg"}], **seed)


def _result(seed: bool = True, runtimes: tuple[str, ...] = ("onnx", "torch")) -> BenchmarkResult:
    runs = {"onnx": _timing(0.5, 0.25), "torch": _timing(1.0, 0.5)}
    seed_run = _timing(5.0, 4.0, label="seed cascade x101 @1333x800 (torch)",
                       preset=SEED_PRESET, weights="random") if seed else None
    settings = BenchmarkSettings(checkpoint=Path("m.pt"), runtime=runtimes[0],
                                 compare_runtimes=len(runtimes) > 1, tta=("h",))
    return BenchmarkResult(settings, "lite0_fpn_fast", {"weights": "m.pt"}, ("a.jpg",),
                           "2.x", 2, {k: runs[k] for k in runtimes}, seed_run)


def test_result_to_dict_has_the_benchmark_json_layout() -> None:
    res = _result()
    data = res.to_dict()
    assert list(data) == ["settings", "preset", "model_info", "photos", "torch_version",
                          "torch_threads", "runs", "seed", "s_per_photo", "seed_s_per_photo",
                          "speedup_vs_seed", "onnx_vs_torch", "headline"]
    assert data["settings"]["checkpoint"] == "m.pt" and data["settings"]["tta"] == ("h",)
    timing_keys = ["phases", "s_per_photo", "cpu_s_per_photo", "photos_per_s", "mean_tiles",
                   "mean_megapixels", "peak_rss_mb", "peak_rss_reset", "predictions", "samples"]
    assert [list(r) for r in data["runs"].values()] == [timing_keys, timing_keys]
    assert list(data["seed"]) == ["label", "preset", "weights", *timing_keys]
    assert (data["s_per_photo"], data["seed_s_per_photo"], data["speedup_vs_seed"]) == (
        0.5, 5.0, 10.0)
    assert data["onnx_vs_torch"] == {"total": 2.0, "model": 2.0}
    assert data["headline"] == res.headline == (
        "scratchdet (lite0_fpn_fast, onnx): 0.50 s/photo | seed cascade x101 @1333x800 "
        "(torch): 5.00 s/photo | 10.0x faster")
    back = BenchmarkResult.from_dict(json.loads(json.dumps(data)))
    assert back == res and json.dumps(back.to_dict()) == json.dumps(data)


def test_summary_and_markdown_of_a_result() -> None:
    lines = summary_lines(_result())
    assert lines[1] == ("ONNX Runtime vs PyTorch eager (lite0_fpn_fast): 2.00x end to end, "
                        "2.00x model phase")
    assert lines[2] == ("  lite0_fpn_fast (onnx): decode 0.500, localise 0.500, model 0.250, "
                        "merge 0.500, total 0.500 s (mean); p90 total 0.50 s; CPU 1.00 s/photo; "
                        "2.00 photos/s; peak RSS 900 MiB")
    assert lines[4].startswith("  seed cascade x101 @1333x800 (torch): decode 5.000,")
    md = to_markdown(_result()).splitlines()
    assert md[4].startswith("1 photos, repeat 1, warm-up 1, 2 threads, scale 1.0, max_single "
                            "2560, test-time flips h, tiles 1024/256; weights: m.pt;")
    assert md[8] == ("| lite0_fpn_fast (onnx) | " + " | ".join(
        ["0.500 / 0.500 / 0.500"] * 2 + ["0.250 / 0.250 / 0.250"] + ["0.500 / 0.500 / 0.500"] * 2)
        + " | 1.00 | 2.00 | 1.0 | 0.50 | 900 |")
    assert md[-1] == "ONNX Runtime vs PyTorch eager: 2.00x end to end, 2.00x in the model phase."


def test_result_without_seed_or_second_runtime() -> None:
    res = _result(seed=False, runtimes=("torch",))
    data = res.to_dict()
    assert "onnx_vs_torch" not in data and data["seed"] is None
    assert (data["seed_s_per_photo"], data["speedup_vs_seed"]) == (None, None)
    assert res.headline == "scratchdet (lite0_fpn_fast, torch): 1.00 s/photo"
    assert summary_lines(res)[1].startswith("  lite0_fpn_fast (torch): ")
