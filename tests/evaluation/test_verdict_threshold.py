"""Reading an evaluation's picked verdict threshold back (predict / serve --threshold-from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.evaluation import evaluate
from scratchdet.evaluation.outputs import write_evaluation
from scratchdet.evaluation.verdict_threshold import resolve_threshold, threshold_from

from .coco_helpers import CATS, ann, det, img


def _evaluation(out: Path, target_recall: float | None) -> Path:
    """Photos 1, 2 scratched (best scores 0.9, 0.4); 3, 4 clean (0.6, 0.2); 1, 3 white."""
    names = ["white_a.jpg", "red_b.jpg", "white_c.jpg", "red_d.jpg"]
    gt = {"images": [img(i + 1, n) for i, n in enumerate(names)], "categories": CATS,
          "annotations": [ann(1, 1, [100, 100, 50, 50]), ann(2, 2, [300, 300, 40, 40])]}
    dets = [det(1, [100, 100, 50, 50], 0.9), det(2, [300, 300, 40, 40], 0.4),
            det(3, [10, 10, 30, 30], 0.6), det(4, [10, 10, 30, 30], 0.2)]
    result = evaluate(gt, dets, group_by="colour", part_level=True, target_recall=target_recall)
    write_evaluation(result, out, force=True)
    return out


def test_threshold_from_reads_the_pick_per_group(tmp_path: Path) -> None:
    ev = _evaluation(tmp_path / "eval", 0.95)
    value, how = threshold_from(ev)  # both scratched photos caught: down to 0.4
    assert value == 0.4 and "catches 2/2" in how and "1/2 (0.500) clean" in how
    assert threshold_from(ev / "metrics.json", "white")[0] == 0.9
    assert threshold_from(ev, "red")[0] == 0.4
    assert resolve_threshold(None, ev, "white")[0] == 0.9
    assert resolve_threshold(None, None) == (0.5, None)
    assert resolve_threshold(0.7, None) == (0.7, None)


def test_threshold_from_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"metrics\.json: not found"):
        threshold_from(tmp_path)
    ev = _evaluation(tmp_path / "no_target", None)
    with pytest.raises(ValueError, match=r"no_target/metrics.json: group 'all' has no target"
                                         r" pick \(evaluate with --target-recall R\)"):
        threshold_from(ev)
    ev = _evaluation(tmp_path / "eval", 0.95)
    with pytest.raises(ValueError, match=r"no part-level group 'blue' \(has: all, white, red\)"):
        threshold_from(ev, "blue")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ValueError, match=r"bad\.json: not JSON"):
        threshold_from(bad)
    bad.write_text(json.dumps({"metrics": []}))
    with pytest.raises(ValueError, match=r"bad\.json: no part-level view"):
        threshold_from(bad)
    with pytest.raises(ValueError, match="not both"):
        resolve_threshold(0.5, ev)
    with pytest.raises(ValueError, match="outside"):
        resolve_threshold(1.5, None)


def test_threshold_from_unreachable_target_says_why(tmp_path: Path) -> None:
    gt = {"images": [img(1, "white_a.jpg"), img(2, "white_b.jpg")], "categories": CATS,
          "annotations": [ann(1, 1, [100, 100, 50, 50]), ann(2, 2, [100, 100, 50, 50])]}
    result = evaluate(gt, [det(1, [100, 100, 50, 50], 0.8)], part_level=True,
                      target_recall=1.0)
    write_evaluation(result, tmp_path, force=True)
    with pytest.raises(ValueError, match="recall 1 not reachable"):
        threshold_from(tmp_path)


def test_serve_takes_the_default_threshold_from_an_evaluation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    import scratchdet.service.app as service_app

    monkeypatch.chdir(tmp_path)  # serve's default history database: not in the checkout
    seen = {}
    monkeypatch.setattr(service_app, "create_app", lambda f, s: seen.setdefault("settings", s))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    ev = _evaluation(tmp_path / "eval", 0.95)
    res = CliRunner().invoke(app, ["serve", "--tiny-random", "--threshold-from", str(ev),
                                   "--threshold-group", "white", "--storage",
                                   str(tmp_path / "photos")])
    assert res.exit_code == 0, res.output
    assert seen["settings"].default_threshold == 0.9 and "threshold 0.9 from" in res.output
    res = CliRunner().invoke(app, ["serve", "--tiny-random", "--threshold-from", str(tmp_path)])
    assert res.exit_code == 2 and "not found" in res.output  # in a box: the path may wrap


def test_predict_fails_photos_at_the_picked_threshold(untrained_model: Path,
                                                      tmp_path: Path) -> None:
    import csv

    from PIL import Image

    photo = tmp_path / "p.jpg"
    Image.new("RGB", (160, 120), (200, 200, 200)).save(photo)
    ev = _evaluation(tmp_path / "eval", 0.95)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["predict", str(untrained_model), str(photo), "--out",
                                   str(out), "--threshold-from", str(ev), "--min-score", "0"])
    assert res.exit_code == 0, res.output
    assert "threshold 0.4 from" in res.output and "fail at threshold 0.4" in res.output
    scores = [d["score"] for d in json.loads((out / "results.bbox.json").read_text())]
    (row,) = csv.DictReader((out / "verdicts.csv").open())
    assert int(row["n_boxes"]) == sum(s >= 0.4 for s in scores)
    assert row["verdict"] == ("fail" if max(scores, default=0) >= 0.4 else "pass")
    both = CliRunner().invoke(app, ["predict", str(untrained_model), str(photo), "--out",
                                    str(tmp_path / "o2"), "--threshold", "0.3",
                                    "--threshold-from", str(ev)])
    assert both.exit_code == 2 and "not both" in both.output
    assert not (tmp_path / "o2").exists()
