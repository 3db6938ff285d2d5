"""The sectioned HTML report and its assembly from output folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from evaluation.coco_helpers import TWO_PHOTOS_DETS as DETS
from evaluation.coco_helpers import TWO_PHOTOS_GT as GT
from scratchdet.cli import app
from scratchdet.evaluation import evaluate
from scratchdet.evaluation.outputs import write_evaluation
from scratchdet.report import Html, Image, Report, Table, Text, build_report, markdown_blocks


def _png(path: Path) -> Path:
    PILImage.new("RGB", (8, 8), (255, 0, 0)).save(path)
    return path


def test_sections_render_blocks_and_escape(tmp_path: Path) -> None:
    report = Report("R <1>")
    report.add_section("Model & data", Text("a < b"), Html("<b>bold</b>"),
                       Table(["k", "v"], [["AP", "0.302"]], caption="t"),
                       Image.from_path(_png(tmp_path / "x.png"), "red square"))
    html = report.render()
    assert "<title>R &lt;1&gt;</title>" in html and "<p>a &lt; b</p>" in html
    assert "<b>bold</b>" in html and "<td>AP</td><td>0.302</td>" in html
    assert '<h2 id="model-data">Model &amp; data</h2>' in html
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)
    with pytest.raises(TypeError, match="unsupported block int"):
        report.add_section("bad", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported image type"):
        Image.from_path(tmp_path / "x.gif")


def test_write_is_atomic_and_can_refuse_overwrite(tmp_path: Path) -> None:
    report = Report()
    report.add_section("One", "<p>x</p>")
    out = report.write(tmp_path / "r.html")
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temp file left
    with pytest.raises(FileExistsError):
        report.write(out, force=False)


def test_markdown_table_and_blocks(tmp_path: Path) -> None:
    table = Table.from_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert (list(table.header), [list(r) for r in table.rows]) == (["a", "b"], [["1", "2"]])
    _png(tmp_path / "p.png")
    blocks = markdown_blocks("# Title\n\ntext\n| a |\n|---|\n| 1 |\n![plot](p.png)\n", tmp_path)
    kinds = [type(b).__name__ for b in blocks]
    assert kinds == ["Html", "Text", "Table", "Image"]


def _eval_dir(tmp_path: Path) -> Path:
    result = evaluate(GT, DETS, part_level=True, target_recall=1.0)
    write_evaluation(result, tmp_path / "eval")
    return tmp_path / "eval"


def test_build_report_from_folders(tmp_path: Path) -> None:
    stats = tmp_path / "stats"
    stats.mkdir()
    (stats / "stats.md").write_text("# Dataset statistics\n\n| split | photos |\n|---|---|\n"
                                    "| test | 2 |\n\n![sizes](sizes.png)\n")
    _png(stats / "sizes.png")
    _png(stats / "other.png")
    report = build_report(_eval_dir(tmp_path), stats_dir=stats, title="T")
    assert [s.title for s in report.sections] == ["Dataset", "Metrics", "Part level"]
    html = report.render()
    assert "<td>test</td><td>2</td>" in html  # stats table
    assert html.count("<img") == 2 + 1 + 2  # 2 stats PNGs, PR curves, ROC + thresholds
    assert "<td>AP</td><td>0.50:0.95</td><td>all</td><td>1.000</td>" in html
    assert "highest threshold with recall &gt;= 1 is 0.9" in html
    assert 'src="http' not in html and "file:" not in html  # self-contained


def test_report_without_stats_uses_evaluation_counts(tmp_path: Path) -> None:
    report = build_report(_eval_dir(tmp_path))
    html = report.render()
    assert "<td>all</td><td>2</td><td>1</td><td>1</td><td>1</td>" in html
    with pytest.raises(ValueError, match="nothing to report"):
        build_report()
    with pytest.raises(FileNotFoundError, match=r"metrics\.json: not found"):
        build_report(tmp_path)


def test_report_cli_with_analysis(tmp_path: Path) -> None:
    gt, dets, images = tmp_path / "gt.json", tmp_path / "dets.json", tmp_path / "img"
    gt.write_text(json.dumps(GT))
    dets.write_text(json.dumps(DETS))
    images.mkdir()
    for img in GT["images"]:
        PILImage.new("RGB", (640, 480)).save(images / img["file_name"])
    runner = CliRunner()
    res = runner.invoke(app, ["analyze", str(gt), str(dets), str(images), "--out",
                              str(tmp_path / "an"), "--top-k", "1"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "report.html"
    res = runner.invoke(app, ["report", "--eval", str(_eval_dir(tmp_path)), "--analysis",
                              str(tmp_path / "an"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert '<h2 id="worst-photos">Worst photos</h2>' in html
    assert "#1 red_b.jpg (red): AP50 n/a (clean), 0 missed of 0, 1 false boxes" in html
    assert html.count("data:image/jpeg;base64,") == 2  # overlay + crop of the false box
