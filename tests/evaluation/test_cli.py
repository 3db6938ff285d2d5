"""``scratchdet evaluate`` / ``analyze`` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from scratchdet.cli import app

from .coco_helpers import TWO_PHOTOS_DETS as DETS
from .coco_helpers import TWO_PHOTOS_GT as GT

runner = CliRunner()



def _files(tmp_path: Path) -> tuple[Path, Path]:
    gt, dets = tmp_path / "gt.json", tmp_path / "dets.json"
    gt.write_text(json.dumps(GT))
    dets.write_text(json.dumps(DETS))
    return gt, dets


def test_cli_prints_the_seed_table(sample: Path) -> None:
    res = runner.invoke(app, ["evaluate", str(sample / "annotations/test.json"),
                              str(sample / "reference/results_all.bbox.json"), "--part-level"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()  # the table on stdout; what was scored on stderr
    assert lines[0].split() == ["metric", "IoU", "area", "all", "white", "red"]
    assert res.stderr.startswith("scored 178 of 178 ground-truth photos\n")
    assert "warning: 37 of 178 ground-truth photos have no detection" in res.stderr
    assert "(4 box(es) on them count as misses)" in res.stderr
    assert lines[4].split() == ["AP", "0.50", "0-40^2", "0.059", "-1.000", "0.059"]
    assert lines[13].split() == ["AR", "0.50", "96^2-1e5^2", "0.865", "0.865", "-1.000"]
    assert "AUROC all: 0.874" in res.output and "AUROC red: 0.800" in res.output
    assert any(ln.split()[:3] == ["0.50", "66/88", "(0.750)"] for ln in lines)


def test_cli_bootstrap_intervals_on_the_seed(sample: Path) -> None:
    res = runner.invoke(app, ["evaluate", str(sample / "annotations/test.json"),
                              str(sample / "reference/results_all.bbox.json"),
                              "--bootstrap", "60"])
    assert res.exit_code == 0, res.output
    line = res.stdout.strip().splitlines()[-1]
    assert line.startswith("AP50 95% bootstrap interval (60 photo resamples): all 0.671 [")
    values = {}
    for part in line.split(": ", 1)[1].split("], "):
        name, value, low, high = part.replace("[", "").replace("]", "").replace(",", "").split()
        values[name] = (float(low), float(value), float(high))
    assert set(values) == {"all", "white", "red"}
    assert values["white"][1] == 0.830 and values["red"][1] == 0.226
    for low, value, high in values.values():
        assert 0 <= low < value < high <= 1
    assert values["red"][2] - values["red"][0] > values["all"][2] - values["all"][0]


def test_cli_options_bands_group_by_and_out(tmp_path: Path) -> None:
    gt, dets = _files(tmp_path)
    out = tmp_path / "out"
    args = ["evaluate", str(gt), str(dets), "--bands", "0:40,40:1e5", "--group-by", "none",
            "--target-recall", "1.0", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "40^2-1e5^2" in res.output and "white" not in res.stdout.splitlines()[0]
    assert "highest threshold with recall >= 1 is 0.9" in res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.csv", "metrics.json", "metrics.md", "part_level.md", "part_level_roc.png",
        "part_level_thresholds.png", "pr_curves.png"]
    data = json.loads((out / "metrics.json").read_text())
    assert data["groups"] == ["all"] and data["part_level"]["groups"]["all"]["auroc"] == 1.0
    assert (out / "metrics.csv").read_text().splitlines()[0] == "metric,iou,area,all"
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_cli_config_file_validated(tmp_path: Path) -> None:
    gt, dets = _files(tmp_path)
    cfg = tmp_path / "eval.yaml"
    cfg.write_text("bands: [[0, 30], [30, 1000]]\ngroup_by: state\n")
    res = runner.invoke(app, ["evaluate", str(gt), str(dets), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "0-30^2" in res.output and "scratched" in res.stdout.splitlines()[0]
    cfg.write_text("group_bye: state\n")
    res = runner.invoke(app, ["evaluate", str(gt), str(dets), "--config", str(cfg)])
    assert res.exit_code == 2 and "did you mean 'group_by'" in res.output
    res = runner.invoke(app, ["evaluate", str(gt), str(dets), "--bands", "0-40"])
    assert res.exit_code == 2 and "expected LO:HI" in res.output


def test_cli_bad_detections_exit_2(tmp_path: Path) -> None:
    gt, dets = _files(tmp_path)
    dets.write_text(json.dumps([{**DETS[0], "image_id": 9}]))
    res = runner.invoke(app, ["evaluate", str(gt), str(dets)])
    assert res.exit_code == 2
    assert "detection #0 (image_id 9): image_id 9 is not in the ground truth" in res.output


def test_cli_analyze(tmp_path: Path) -> None:
    from PIL import Image

    gt, dets = _files(tmp_path)
    images = tmp_path / "img"
    images.mkdir()
    Image.new("RGB", (640, 480)).save(images / "red_b.jpg")
    res = runner.invoke(app, ["analyze", str(gt), str(dets), str(images), "--out",
                              str(tmp_path / "an"), "--top-k", "1"])
    assert res.exit_code == 0, res.output
    assert "2 photos ranked, 1 found" in res.output
    assert "worst: red_b.jpg  AP50 n/a  misses 0/0  false boxes 1" in res.output
    assert (tmp_path / "an/worst/01_red_b.jpg").is_file()


def test_shipped_config_gives_the_seed_settings() -> None:
    from scratchdet.config import load_config
    from scratchdet.evaluation import seed_bands
    from scratchdet.evaluation.config import EvaluationConfig

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(EvaluationConfig, root / "configs/evaluate.yaml")
    assert cfg.size_bands() == seed_bands()
    assert (cfg.groups, cfg.max_dets, cfg.target_recall) == (["white", "red"], 100, 0.95)
