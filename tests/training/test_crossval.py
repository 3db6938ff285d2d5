"""K-fold cross-validation: fold assignment (exact), splits, and a tiny end-to-end run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scratchdet.artifact import read_onnx_spec, read_spec
from scratchdet.cli import app
from scratchdet.config import load_config
from scratchdet.data.split import merge_present
from scratchdet.evaluation.fold_pick import fold_pick
from scratchdet.evaluation.image_level import PartLevelResult
from scratchdet.training.config import TrainConfig
from scratchdet.training.crossval import assign_folds, fold_split
from scratchdet.training.crossval_outputs import CrossValHeadline, FoldFacts

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "cpu_fast.yaml"
TRAIN, VALS = "white_DSC_0515.JPG", ("red_DSC_1135.JPG", "white_DSC_0440.JPG")


def _coco() -> dict:
    """9 photos: 4 white scratched, 2 white clean, 2 red scratched, 1 red clean."""
    names = ["white_a", "white_b", "white_c", "white_d", "white_e", "white_f",
             "red_a", "red_b", "red_c"]
    images = [{"id": i, "file_name": f"{n}.jpg"} for i, n in enumerate(names, start=1)]
    scratched = [1, 2, 3, 4, 7, 8]
    anns = [{"id": k, "image_id": i, "bbox": [0, 0, 5, 5], "category_id": 1}
            for k, i in enumerate([*scratched, 1], start=1)]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "s"}]}


def test_assign_folds_exact_and_stratified() -> None:
    coco = _coco()
    folds = assign_folds(coco, 3, seed=0)
    # strata in order: (red, clean) c; (red, scratched) a b; (white, clean) e f;
    # (white, scratched) a b c d, each shuffled by Random(0), dealt round-robin
    assert folds == {9: 0, 7: 1, 8: 2, 5: 0, 6: 1, 4: 2, 3: 0, 2: 1, 1: 2}
    assert folds == assign_folds(coco, 3, seed=0)  # deterministic
    assert folds != assign_folds(coco, 3, seed=1)
    assert sorted(Counter(folds.values()).values()) == [3, 3, 3]
    for ids in ([1, 2, 3, 4], [7, 8], [5, 6]):  # each stratum spread over the folds
        assert len({folds[i] for i in ids}) == min(len(ids), 3)
    with pytest.raises(ValueError, match="at least 2 folds"):
        assign_folds(coco, 1)
    with pytest.raises(ValueError, match="cannot fill 10 folds"):
        assign_folds(coco, 10)


def test_fold_split_partitions_photos_and_boxes() -> None:
    coco = _coco()
    folds = assign_folds(coco, 3)
    seen: list[int] = []
    for f in range(3):
        train, held = fold_split(coco, folds, f)
        held_ids = {im["id"] for im in held["images"]}
        train_ids = {im["id"] for im in train["images"]}
        assert held_ids == {i for i, k in folds.items() if k == f}
        assert train_ids == set(folds) - held_ids
        assert {a["image_id"] for a in held["annotations"]} <= held_ids
        assert len(train["annotations"]) + len(held["annotations"]) == 7
        seen += held_ids
    assert sorted(seen) == list(range(1, 10))


def test_fold_facts_as_in_crossval_json() -> None:
    facts = FoldFacts(0, 16, 31, 8, 14, 0.78, 128, "fold0/model.pt", 2560, ("h",), 1.0, None,
                      "fold0/runs/model/checkpoints/last.ckpt", True)
    data = facts.to_dict()
    assert list(data) == ["fold", "train_photos", "train_boxes", "heldout_photos",
                          "heldout_boxes", "train_minutes", "steps", "model", "max_single",
                          "tta", "scale", "mined_from", "resumed_from", "int8"]
    assert data["tta"] == ["h"] and data["mined_from"] is None
    assert FoldFacts.from_dict(json.loads(json.dumps(data))) == facts
    older = {k: data[k] for k in list(data)[:8]}  # a file from before max_single, tta, ...
    assert FoldFacts.from_dict(older) == FoldFacts(0, 16, 31, 8, 14, 0.78, 128,
                                                   "fold0/model.pt")


def test_headline_keys_in_order() -> None:
    head = CrossValHeadline({"all": 0.5, "white": 0.75}, {"all": [0.25, 0.625]}, 0.2, 8, 14,
                            0.78)
    data = head.to_dict()
    assert list(data.items()) == [
        ("oof_AP50_all", 0.5), ("oof_AP50_white", 0.75), ("oof_AP50_all_ci95", [0.25, 0.625]),
        ("oof_AP_all", 0.2), ("photos", 8), ("boxes", 14), ("train_minutes_total", 0.78)]
    assert "ci95" not in str(CrossValHeadline({"all": 0.5}, {}, 0.2, 8, 14, 0).to_dict())


@pytest.fixture()
def tiny_sample(sample_subset: Callable[..., Path]) -> Path:
    """The sample's annotations with one train and two val photos (symlinks)."""
    return sample_subset({"train": (TRAIN,), "val": VALS})


def test_merge_present_keeps_only_photos_on_disk(tiny_sample: Path) -> None:
    coco = merge_present(tiny_sample, ("train", "val"))
    assert {im["file_name"] for im in coco["images"]} == {f"train/{TRAIN}",
                                                          *(f"val/{n}" for n in VALS)}
    assert [im["id"] for im in coco["images"]] == [1, 2, 3]
    assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
    assert {a["image_id"] for a in coco["annotations"]} <= {1, 2, 3}
    with pytest.raises(FileNotFoundError, match="none of the photos"):
        merge_present(tiny_sample, ("test",))  # annotations/test.json, no test/ photos


TINY = ["--set", "max_steps=1", "--set", "epochs=1", "--set", "tile_overlap=64",
        "--set", 'tile_options={"samples_per_epoch": 2}', "--set", "num_workers=0",
        "--set", "progress_bar=false", "--set", "loggers=[]"]


def test_crossval_end_to_end_and_reuse(tiny_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    res = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                   "--out", str(out), "--folds", "3", *TINY])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "crossval.json").read_text())
    folds = json.loads((out / "folds.json").read_text())
    assert sorted(folds.values()) == [0, 1, 2]
    assert [f["heldout_photos"] for f in summary["folds"]] == [1, 1, 1]
    assert all(f["train_photos"] == 2 and f["steps"] == 1 for f in summary["folds"])
    head = summary["headline"]
    assert head["photos"] == 3 and 0 <= head["oof_AP50_all"] <= 1
    low, high = head["oof_AP50_all_ci95"]
    assert 0 <= low <= high <= 1 and "bootstrap interval (200 photo resamples)" in res.output
    assert "Part level" in res.output and (out / "eval" / "metrics.json").is_file()
    assert "boxes at 0.5 (IoU 0.5): boxes per scratch median" in res.output
    stats = json.loads((out / "eval" / "box_stats.json").read_text())
    assert stats[0]["threshold"] == 0.5 and stats[0]["ground_truth"] == head["boxes"]
    # the threshold picked on all out-of-fold photos travels in every fold's model file
    pick = json.loads((out / "eval" / "metrics.json").read_text())
    picked = pick["part_level"]["groups"]["all"]["target"]["threshold"]
    for f in summary["folds"]:
        spec = read_spec(f["model"])
        if picked is None:  # no threshold reached the target: the models keep the default
            assert (spec.threshold, spec.threshold_source) == (0.5, "default")
        else:
            assert spec.threshold == picked and spec.threshold_source.startswith("crossval ")
            assert "picked on 3 out-of-fold photos" in spec.threshold_source
    coco = json.loads((out / "train_val.json").read_text())
    fold_of_id = {im["id"]: folds[im["file_name"]] for im in coco["images"]}
    # verdicts at thresholds picked on the other folds: one for all parts, one per colour
    photos = PartLevelResult.from_dict(pick["part_level"]).photos
    assert [p["per_group"] for p in summary["fold_picks"]] == [False, True]
    for entry, per_group in zip(summary["fold_picks"], (False, True), strict=True):
        assert entry == fold_pick(photos, fold_of_id, 0.95, per_group).to_dict()
        assert entry["scratched"] + entry["clean"] == 3
    assert "threshold picked on the other folds (recall >= 0.95, per group)" in res.output
    for f in summary["folds"]:  # each photo's detections come from the model of its own fold
        dets = json.loads((out / f"fold{f['fold']}" / "predict" / "results.bbox.json").read_text())
        assert {fold_of_id[d["image_id"]] for d in dets} <= {f["fold"]}
    # the same models, predicted as the benchmark does: no training, same folds required
    again = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                     "--out", str(tmp_path / "cv2"), "--folds", "3",
                                     "--reuse", str(out), "--max-single", "2560"])
    assert again.exit_code == 0, again.output
    assert again.output.count("reusing") == 3 and "training on" not in again.output
    nested = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                      "--out", str(tmp_path / "cv3"), "--folds", "3",
                                      "--reuse", str(out), "--nested", "suppress:0.5",
                                      "--bootstrap", "0"])
    assert nested.exit_code == 0, nested.output
    bad_rule = CliRunner().invoke(app, ["crossval", str(CONFIG), "--out", str(tmp_path / "x"),
                                        "--nested", "squash"])
    assert bad_rule.exit_code == 2 and "expected MODE[:IOS[:DECAY]]" in bad_rule.output
    # the same, 2 folds at once in spawned processes: identical pooled detections
    par = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                   "--out", str(tmp_path / "cv4"), "--folds", "3", "--jobs", "2",
                                   "--reuse", str(out), "--max-single", "2560"])
    assert par.exit_code == 0, par.output
    assert "3 folds, 2 at once" in par.output

    def oof(folder: str) -> list:
        dets = json.loads((tmp_path / folder / "oof.bbox.json").read_text())
        return sorted(dets, key=lambda d: (d["image_id"], -d["score"], d["bbox"]))

    assert oof("cv4") == oof("cv2")
    # by default the config's rule (cpu_fast: keep, boxes as merged); --nested decay:0.5:0.5
    # halves the score of each box nested in a better one and leaves the others
    decayed = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                       "--out", str(tmp_path / "cv-decay"), "--folds", "3",
                                       "--reuse", str(out), "--nested", "decay:0.5:0.5",
                                       "--bootstrap", "0"])
    assert decayed.exit_code == 0, decayed.output
    by_decay = {(d["image_id"], *d["bbox"]): d["score"] for d in oof("cv-decay")}
    by_default = {(d["image_id"], *d["bbox"]): d["score"] for d in oof("cv2")}
    assert by_decay.keys() == by_default.keys()
    halved = [k for k, v in by_decay.items() if v == pytest.approx(by_default[k] / 2, abs=2e-5)
              and v != pytest.approx(by_default[k], abs=2e-5)]
    assert halved and all(by_decay[k] == pytest.approx(by_default[k], abs=2e-5)
                          for k in by_decay.keys() - set(halved))
    assert json.loads((tmp_path / "cv4" / "crossval.json").read_text())["headline"] == \
        json.loads((tmp_path / "cv2" / "crossval.json").read_text())["headline"]
    flipped = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                       "--out", str(tmp_path / "cv5"), "--folds", "3",
                                       "--reuse", str(out), "--tta", "h", "--bootstrap", "0"])
    assert flipped.exit_code == 0, flipped.output
    facts = json.loads((tmp_path / "cv5" / "crossval.json").read_text())["folds"]
    assert [f["tta"] for f in facts] == [["h"]] * 3 and {f["scale"] for f in facts} == {1.0}
    # the int8 export each fold model would ship, calibrated on the fold's training photos
    int8 = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                    "--out", str(tmp_path / "cv-int8"), "--folds", "3",
                                    "--fold", "0", "--reuse", str(out), "--int8",
                                    "--bootstrap", "0"])
    assert int8.exit_code == 0, int8.output
    assert "fold 0: int8 export (" in int8.output and "on 2 training photos" in int8.output
    (fact,) = json.loads((tmp_path / "cv-int8" / "crossval.json").read_text())["folds"]
    assert fact["int8"] is True and fact["model"].endswith("fold0/model.int8.onnx")
    _, graph = read_onnx_spec(fact["model"])
    assert graph["int8"]["calibration"]["photos"] == 2 and "exported_from" in graph
    assert not list((tmp_path / "cv-int8" / "fold0").glob(".*float.onnx"))  # no float copy
    dets = json.loads((tmp_path / "cv-int8" / "oof.bbox.json").read_text())
    assert dets and {fold_of_id[d["image_id"]] for d in dets} == {0}
    alone = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                     "--out", str(tmp_path / "cv-int8b"), "--int8"])
    assert alone.exit_code == 2 and "give --reuse RUN" in alone.output
    bad = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                   "--out", str(tmp_path / "cv6"), "--tta", "x"])
    assert bad.exit_code == 2 and "unknown flip 'x'" in bad.output
    assert not (tmp_path / "cv6").exists()
    # a second round: each fold mines hard negatives on its own training photos
    args = ["crossval", str(CONFIG), "--sample", str(tiny_sample), "--folds", "3",
            "--mine-from", str(out), "--bootstrap", "0", *TINY]
    no_share = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "cv7")])
    assert no_share.exit_code == 2 and "hard_background is 0" in no_share.output
    mined = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "cv8"),
                                     "--set", "tile_options.hard_background=0.5"])
    assert mined.exit_code == 0, mined.output
    assert mined.output.count("mining hard negatives on 2 training photos") == 3
    for f in json.loads((tmp_path / "cv8" / "crossval.json").read_text())["folds"]:
        fold_dir = tmp_path / "cv8" / f"fold{f['fold']}"
        train_ids = {im["id"] for im in json.loads((fold_dir / "train.json").read_text())["images"]}
        found = json.loads((fold_dir / "mined" / "results.bbox.json").read_text())
        assert found and {d["image_id"] for d in found} <= train_ids
        assert f["mined_from"] == str(out)
        config = (fold_dir / "runs" / "model" / "config.yaml").read_text()
        assert f"hard_negatives: {fold_dir / 'mined' / 'results.bbox.json'}" in config
    other = CliRunner().invoke(app, ["crossval", str(CONFIG), "--sample", str(tiny_sample),
                                     "--out", str(tmp_path / "cv3"), "--folds", "2",
                                     "--reuse", str(out)])
    assert other.exit_code == 2 and "folds differ" in other.output
    assert "is in fold" in other.output and "there and in fold" in other.output


def test_nested_rule_defaults_to_the_config(tmp_path: Path) -> None:
    from dataclasses import replace

    from scratchdet.training.crossval import CrossValSettings, checked_settings

    s = CrossValSettings(CONFIG, tmp_path / "sample", tmp_path / "cv")
    assert checked_settings(s).nested == ("keep", 0.5, 0.5)  # cpu_fast.yaml's nested
    decay = replace(s, overrides=("nested=decay:0.5:0.5",))
    assert checked_settings(decay).nested == ("decay", 0.5, 0.5)
    given = replace(s, nested=("suppress", 0.6, 0.5))  # --nested wins over the config
    assert checked_settings(given).nested == ("suppress", 0.6, 0.5)


def test_every_fold_trains_with_the_config_text_of_the_start(tmp_path: Path) -> None:
    from scratchdet.training.crossval import CrossValSettings, fold_config, snapshot_config

    cfg = tmp_path / "recipe.yaml"
    cfg.write_text(CONFIG.read_text())
    s = snapshot_config(CrossValSettings(cfg, tmp_path / "sample", tmp_path / "cv"))
    assert s.config == tmp_path / "cv" / "config.yaml"
    text, epochs = CONFIG.read_text(), load_config(TrainConfig, CONFIG).epochs
    assert s.config.read_text() == text
    edited = text.replace(f"\nepochs: {epochs}\n", "\nepochs: 4\n")
    assert edited != text
    cfg.write_text(edited)  # edited mid-run
    assert fold_config(s, tmp_path / "cv" / "fold1").epochs == epochs != 4
    assert snapshot_config(s) == s  # already the snapshot: left as is


def test_crossval_resumes_an_interrupted_run(tiny_sample: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import scratchdet.training.crossval as cv

    out = tmp_path / "cv"
    args = ["crossval", str(CONFIG), "--sample", str(tiny_sample), "--out", str(out),
            "--folds", "3", "--bootstrap", "0", *TINY, "--set", "max_steps=2",
            "--set", "epochs=2"]
    real_fit, calls = cv.fit, []

    def power_cut(cfg: TrainConfig) -> object:
        calls.append(cfg)
        if len(calls) < 2:
            return real_fit(cfg)
        real_fit(cfg.model_copy(update={"epochs": 1, "max_steps": 1}))  # one epoch of two
        raise RuntimeError("power cut")

    monkeypatch.setattr(cv, "fit", power_cut)
    cut = CliRunner().invoke(app, [*args, "--resume"])  # nothing in out yet: the run starts
    assert isinstance(cut.exception, RuntimeError) and not (out / "crossval.json").exists()
    assert "holds nothing yet; starting the run there" in cut.output
    fold0 = json.loads((out / "fold0" / "fold.json").read_text())
    assert fold0["facts"]["steps"] == 2 and not (out / "fold1" / "fold.json").exists()
    last = out / "fold1" / "runs" / "model" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    monkeypatch.setattr(cv, "fit", real_fit)
    # another command than the run's: refused, naming what differs; nothing to resume: refused
    other = CliRunner().invoke(app, [*args, "--resume", "--set", "lr=0.5"])
    assert other.exit_code == 2 and "was run with overrides=" in other.output
    seed = CliRunner().invoke(app, [*args, "--resume", "--seed", "5"])
    assert seed.exit_code == 2 and "seed=0 (this command: 5)" in seed.output
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("not a crossval run")
    other_run = CliRunner().invoke(app, [*args[:5], str(stray), *args[6:], "--resume"])
    assert other_run.exit_code == 2 and "holds no crossval run to continue" in other_run.output
    assert (stray / "notes.txt").read_text() == "not a crossval run"
    # fold 0 kept as it was, fold 1 goes on from its checkpoint (step 1 -> 2), fold 2 trains:
    # 1 + 2 training steps in this session (4 if fold 1 started again)
    from scratchdet.training.module import DetectionModule

    real_step, steps = DetectionModule.training_step, []

    def counted(self: DetectionModule, *a: object, **k: object) -> object:
        steps.append(1)
        return real_step(self, *a, **k)

    monkeypatch.setattr(DetectionModule, "training_step", counted)
    res = CliRunner().invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert "fold 0: finished earlier, kept" in res.output and res.output.count("training on") == 2
    assert f"fold 1: resuming its training from {last}" in res.output and len(steps) == 3
    facts = json.loads((out / "crossval.json").read_text())["folds"]
    assert [f["steps"] for f in facts] == [2, 2, 2]
    assert [f["resumed_from"] for f in facts] == [None, str(last), None]
    oof = json.loads((out / "oof.bbox.json").read_text())
    held0 = {im["id"] for im in json.loads((out / "fold0" / "heldout.json").read_text())["images"]}
    assert [d for d in oof if d["image_id"] in held0] == fold0["detections"]
    # all finished: a resume trains nothing; an edited config is noted, the run's copy used
    edited = tmp_path / "edited.yaml"
    edited.write_text(CONFIG.read_text() + "\n# edited after the start\n")
    again = CliRunner().invoke(app, ["crossval", str(edited), *args[2:], "--resume"])
    assert again.exit_code == 0, again.output
    assert again.output.count("finished earlier, kept") == 3 and "training on" not in again.output
    assert f"{edited} has changed since the run started" in again.output
    assert json.loads((out / "crossval.json").read_text())["folds"] == facts
    # cut after its training ended (no fold.json): the last checkpoint is already at the end,
    # so the fold trains no step, exports the same weights and predicts the same boxes
    (out / "fold2" / "fold.json").unlink()
    steps.clear()
    late = CliRunner().invoke(app, [*args, "--resume"])
    assert late.exit_code == 0, late.output
    assert "fold 2: resuming its training from" in late.output and steps == []
    assert json.loads((out / "oof.bbox.json").read_text()) == oof
    # fold 0 finished on another machine (only its fold.json came along, as docs/runs keeps
    # it): the run completes, stamps the models it has and names the one it cannot
    Path(facts[0]["model"]).unlink()
    moved = CliRunner().invoke(app, [*args, "--resume"])
    assert moved.exit_code == 0, moved.output
    assert f"not stamped, model file absent (a fold finished elsewhere?): {facts[0]['model']}" \
        in moved.output
    assert json.loads((out / "oof.bbox.json").read_text()) == oof


def test_resume_refuses_other_folds_naming_the_photo(tmp_path: Path) -> None:
    from scratchdet.config import ConfigError
    from scratchdet.training.crossval_resume import check_same_folds, fold_difference

    run = {"a.jpg": 0, "b.jpg": 1, "c.jpg": 2}
    (tmp_path / "folds.json").write_text(json.dumps(run))
    assert fold_difference(run, dict(run)) is None
    check_same_folds(tmp_path, dict(run))  # the same folds: no error
    with pytest.raises(ConfigError, match=r"photo b\.jpg is in fold 1 there and in fold 2 now"):
        check_same_folds(tmp_path, {**run, "b.jpg": 2})
    with pytest.raises(ConfigError, match=r"photo d\.jpg is in fold None there and in fold 0"):
        check_same_folds(tmp_path, {**run, "d.jpg": 0})
    (tmp_path / "folds.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"folds\.json: not readable"):
        check_same_folds(tmp_path, run)


def test_resume_starts_in_a_missing_or_empty_folder_only(tmp_path: Path) -> None:
    from scratchdet.config import ConfigError
    from scratchdet.training.crossval_resume import check_same_run

    said: list[str] = []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_same_run(tmp_path / "missing", {"seed": 0}, CONFIG, said.append) is None
    assert check_same_run(empty, {"seed": 0}, CONFIG, said.append) is None
    assert len(said) == 2 and all("holds nothing yet" in s for s in said)
    (empty / "fold0").mkdir()  # something there but no run.json: refused, left as it is
    with pytest.raises(ConfigError, match="holds no crossval run to continue"):
        check_same_run(empty, {"seed": 0}, CONFIG, said.append)
    assert (empty / "fold0").is_dir()
