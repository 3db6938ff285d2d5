"""``scratchdet demo`` orchestration on a one-train-photo, one-val-photo copy of the sample."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scratchdet.artifact import read_spec
from scratchdet.cli import app
from scratchdet.demo.pipeline import DemoSettings, merged_train_val, train_config

TRAIN, VAL = "white_DSC_0515.JPG", "red_DSC_1135.JPG"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cpu_fast.yaml"


@pytest.fixture()
def tiny_sample(sample_subset: Callable[..., Path]) -> Path:
    """The sample's annotations with one train and one val photo (symlinks)."""
    return sample_subset({"train": (TRAIN,), "val": (VAL,)})


def test_merged_train_val_and_final_config(tiny_sample: Path, tmp_path: Path) -> None:
    coco = json.loads(merged_train_val(tiny_sample, tmp_path / "m.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == [f"train/{TRAIN}", f"val/{VAL}"]
    assert [im["id"] for im in coco["images"]] == [1, 2]
    assert [a["image_id"] for a in coco["annotations"]] == [1, 1, 1, 1, 2]
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3, 4, 5]
    s = DemoSettings(tiny_sample, tmp_path / "out", CONFIG, "short", final=True)
    cfg = train_config(s)
    assert cfg.train_images == tiny_sample and cfg.train_annotations.name == "train_val.json"
    assert (cfg.epochs, cfg.tile_size, cfg.tile_options["samples_per_epoch"]) == (16, 512, 128)
    assert cfg.val_every_n_epochs == 1000  # nothing held out to validate on
    full = train_config(DemoSettings(tiny_sample, tmp_path / "full", CONFIG, "full"))
    assert full.epochs == 48 and full.train_images == tiny_sample / "train"  # the config's own
    with pytest.raises(ValueError, match="schedule must be one of short, full"):
        train_config(DemoSettings(tiny_sample, tmp_path, CONFIG, "long"))


def test_demo_runs_every_step(tiny_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, [
        "demo", "--sample", str(tiny_sample), "--out", str(out), "--config", str(CONFIG),
        "--no-benchmark", "--set", "max_steps=2", "--set", "epochs=1",
        "--set", "val_every_n_epochs=1", "--set", "tile_size=512", "--set", "tile_overlap=64",
        "--set", 'tile_options={"samples_per_epoch": 4}', "--set", "num_workers=0",
        "--set", "progress_bar=false", "--set", "loggers=[csv]", "--set", "log_every_n_steps=1",
    ])
    assert res.exit_code == 0, res.output
    assert "1/5 dataset stats: 1 train photos, 1 val photos" in res.output
    assert "benchmark skipped" in res.output and "Part level" in res.output
    summary = json.loads((out / "summary.json").read_text())
    head = summary["headline"]
    assert set(head) >= {"val_AP50_all", "val_AP50_red", "val_AP_all", "training_minutes"}
    assert "val_AP50_white" not in head  # no white photo in this val set
    assert 0 <= head["val_AP50_red"] <= 1 and head["training_minutes"] > 0
    low, high = head["val_AP50_red_ci95"]  # one red val photo: every resample is that photo
    assert low == high == round(head["val_AP50_red"], 3)
    assert "bootstrap interval (200 photo resamples)" in res.output
    assert head["val_photos"] == 1 and head["predict_s_per_photo"] > 0
    dets = json.loads((out / "predict" / "results.bbox.json").read_text())
    val_id = next(im["id"] for im in json.loads(
        (tiny_sample / "annotations" / "val.json").read_text())["images"]
        if im["file_name"] == VAL)
    assert {d["image_id"] for d in dets} <= {val_id}
    # one scratched val photo: the 0.95-recall pick is its best score (none without a box)
    assert head.get("verdict_threshold") == (max(d["score"] for d in dets) if dets else None)
    assert "target all: highest threshold with recall >= 0.95" in res.output or not dets
    spec = read_spec(head_files(out)["model"])  # the trained model carries the val pick
    if dets:
        assert spec.threshold == head["verdict_threshold"] == head["model_threshold"]
        assert spec.threshold_source.startswith(f"demo {out}: highest threshold catching")
    else:
        assert spec.threshold_source == "default"
    for name in ("stats/stats.md", "eval/metrics.json", "analysis", "report.html"):
        assert (out / name).exists(), name
    html = (out / "report.html").read_text()
    for title in ("Dataset", "Model", "Metrics", "Part level", "Worst photos"):
        assert f">{title}</h2>" in html, title
    assert html.index(">Dataset</h2>") < html.index(">Model</h2>") < html.index(">Metrics</h2>")
    assert "lite1_cascade_fast" in html and "training loss" in html


def head_files(out: Path) -> dict[str, str]:
    return json.loads((out / "summary.json").read_text())["files"]


def test_demo_missing_sample_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--sample", str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "expected annotations/train.json and train/" in res.output


def test_headline_values_are_rounded_for_the_report() -> None:
    from scratchdet.demo.sections import _headline_value

    assert _headline_value(0.3323676432920169) == "0.332"
    assert _headline_value(None) == "n/a"
    assert _headline_value(16) == "16"
    assert _headline_value("0.20 s/photo") == "0.20 s/photo"


def test_demo_tta_predicts_val_with_flips(tiny_sample: Path, untrained_model: Path,
                                          tmp_path: Path) -> None:
    from scratchdet.inference import run

    model = untrained_model
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--sample", str(tiny_sample), "--out", str(out),
                                   "--model", str(model), "--no-benchmark", "--tta", "h"])
    assert res.exit_code == 0, res.output
    assert "training skipped" in res.output and "tta: h" in res.output
    assert json.loads((out / "summary.json").read_text())["headline"]["tta"] == "h"
    got = json.loads((out / "predict" / "results.bbox.json").read_text())
    photos = [tiny_sample / "val" / VAL]
    ids = run.image_ids(photos, tiny_sample / "annotations" / "val.json")

    def boxes(tta: tuple[str, ...], name: str) -> list[list[float]]:
        run.predict_for_evaluation(model, photos, ids, tmp_path / name, tta=tta)
        return [d["bbox"] for d in json.loads((tmp_path / name / "results.bbox.json").read_text())]

    assert [d["bbox"] for d in got] == boxes(("h",), "flipped")
    assert [d["bbox"] for d in got] != boxes((), "plain")


def test_demo_bad_tta_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--sample", str(tmp_path), "--tta", "x"])
    assert res.exit_code == 2 and "--tta" in res.output and "'x'" in res.output


def test_final_model_carries_the_threshold_of_a_crossval(untrained_model: Path,
                                                          tmp_path: Path) -> None:
    import shutil

    from scratchdet.demo.pipeline import DemoResult, DemoSettings
    from scratchdet.demo.runner import _stamp

    model = shutil.copy(untrained_model, tmp_path / "model.pt")
    metrics = tmp_path / "cv" / "eval" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"part_level": {"groups": {"all": {"target": {
        "threshold": 0.42, "message": "highest threshold with recall >= 0.95 is 0.42"}}}}}))
    settings = DemoSettings(tmp_path, tmp_path / "out", final=True,
                            threshold_from=metrics.parent)
    res, lines = DemoResult(tmp_path / "out"), []
    _stamp(settings, Path(model), res, lines.append)
    spec = read_spec(model)
    assert spec.threshold == 0.42 == res.headline["model_threshold"]
    assert spec.threshold_source == (f"{metrics} (all): highest threshold with recall >= "
                                     "0.95 is 0.42")
    assert lines == [f"the model operates at threshold 0.42 ({spec.threshold_source})"]
    plain = DemoResult(tmp_path / "out")  # --final without a pick: default kept, and said so
    _stamp(DemoSettings(tmp_path, tmp_path / "out", final=True), Path(model), plain, print)
    assert "keeps the default threshold 0.5" in plain.notes[0]


def test_costly_pick_note_names_the_cost() -> None:
    from scratchdet.demo.runner import costly_pick_note
    from scratchdet.evaluation.image_level import ThresholdPoint

    # the demo of 29 Nov: every scratched val part caught at 0.0876, every clean one rejected
    note = costly_pick_note(ThresholdPoint(0.0876, caught=10, scratched=10, rejected=6, clean=6))
    assert note is not None
    assert note.startswith("the val pick 0.0876 catches 10/10 scratched val parts but rejects "
                           "6/6 clean ones")
    assert "--threshold-from" in note
    assert costly_pick_note(ThresholdPoint(0.5, 10, 10, 3, 6)) is None  # half: no note
    assert costly_pick_note(ThresholdPoint(0.5, 10, 10, 4, 6)) is not None
    assert costly_pick_note(ThresholdPoint(0.5, 1, 1, 0, 0)) is None  # no clean part
