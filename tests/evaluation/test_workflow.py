"""``evaluate_and_write``: the one evaluate -> files -> text -> bootstrap workflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchdet.evaluation.config import DEFAULT_THRESHOLDS
from scratchdet.evaluation.outputs import evaluation_paths
from scratchdet.evaluation.result import part_level_text
from scratchdet.evaluation.workflow import EvaluationRun, evaluate_and_write

from .coco_helpers import TWO_PHOTOS_DETS as DETS
from .coco_helpers import TWO_PHOTOS_GT as GT

TABLE = ["all", "white", "red"]


def test_table_only_writes_nothing() -> None:
    run = evaluate_and_write(GT, DETS)
    assert isinstance(run, EvaluationRun)
    assert run.result.groups == ("all", "white", "red") and run.result.part_level is None
    ap50 = [run.result.value("AP", "0.50", group=g) for g in TABLE]
    assert ap50 == [pytest.approx(1.0), pytest.approx(1.0), -1.0]
    assert run.text == run.full_text == run.result.table_text()
    assert run.files == () and dict(run.intervals) == {} and run.bootstrap_text == ""


def test_part_level_files_text_and_bootstrap(tmp_path: Path) -> None:
    run = evaluate_and_write(GT, DETS, tmp_path / "eval", part_level=True, target_recall=0.95,
                             bootstrap=5)
    part = run.result.part_level
    assert part is not None and part.groups["all"].auroc == 1.0
    assert part.groups["all"].target is not None and part.groups["all"].target.threshold == 0.9
    assert run.text == (run.result.table_text() + "\n"
                        + part_level_text(part, DEFAULT_THRESHOLDS))
    assert [p.name for p in run.files] == [
        "metrics.md", "metrics.json", "metrics.csv", "pr_curves.png", "part_level.md",
        "part_level_roc.png", "part_level_thresholds.png"]
    assert list(run.files) == evaluation_paths(tmp_path / "eval", part_level=True)
    assert all(p.is_file() for p in run.files)
    # white: its one photo, AP 1 in every resample; red: no box; all: resamples with a box
    assert run.bootstrap_text == ("AP50 95% bootstrap interval (5 photo resamples): "
                                  "all 1.000 [1.000, 1.000], white 1.000 [1.000, 1.000], "
                                  "red n/a (no box)")
    assert [(c.group, c.samples) for c in run.intervals.values()] == [
        ("all", 5), ("white", 5), ("red", 5)]
    assert (run.intervals["white"].valid, run.intervals["red"].valid) == (5, 0)
    assert run.full_text == run.text + "\n" + run.bootstrap_text


def test_target_recall_alone_adds_the_part_level() -> None:
    run = evaluate_and_write(GT, DETS, group_by=None, target_recall=1.0)
    assert run.result.groups == ("all",) and run.result.part_level is not None
    assert "highest threshold with recall >= 1 is 0.9" in run.text


def test_existing_files_refused_before_evaluating(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    first = evaluate_and_write(GT, DETS, out)
    assert [p.name for p in first.files] == ["metrics.md", "metrics.json", "metrics.csv",
                                             "pr_curves.png"]
    before = {p: p.read_bytes() for p in first.files}
    bad = [{**DETS[0], "image_id": 9}]  # would fail in the evaluator: the check comes first
    with pytest.raises(FileExistsError, match=r"metrics\.md: already exists"):
        evaluate_and_write(GT, bad, out)
    assert {p: p.read_bytes() for p in first.files} == before
    with pytest.raises(ValueError, match="image_id 9 is not in the ground truth"):
        evaluate_and_write(GT, bad, out, force=True)
    again = evaluate_and_write(GT, DETS, out, force=True)
    assert [p.read_bytes() for p in again.files if p.suffix != ".png"] == [
        b for p, b in before.items() if p.suffix != ".png"]
