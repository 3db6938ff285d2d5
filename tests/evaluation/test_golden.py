"""The seed's result table, reproduced from its detections (see the sample README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scratchdet.evaluation import evaluate, seed_bands
from scratchdet.evaluation.coco_eval import coco_from_dict, results_coco, run_cocoeval

# metric, IoU, band, all, white, red (the sample README's table)
SEED_TABLE = [
    ("AP", "0.50:0.95", "all", 0.302, 0.384, 0.099),
    ("AP", "0.50", "all", 0.671, 0.830, 0.226),
    ("AP", "0.50", "0-40^2", 0.059, -1.000, 0.059),
    ("AP", "0.50", "40^2-70^2", 0.404, 0.537, 0.417),
    ("AP", "0.50", "70^2-96^2", 0.851, 0.890, 0.374),
    ("AP", "0.50", "96^2-1e5^2", 0.826, 0.830, -1.000),
    ("AR", "0.50:0.95", "all", 0.371, 0.455, 0.165),
    ("AR", "0.50", "all", 0.749, 0.890, 0.404),
    ("AR", "0.50", "0-40^2", 0.059, -1.000, 0.059),
    ("AR", "0.50", "40^2-70^2", 0.659, 0.929, 0.533),
    ("AR", "0.50", "70^2-96^2", 0.896, 0.918, 0.667),
    ("AR", "0.50", "96^2-1e5^2", 0.865, 0.865, -1.000),
]


@pytest.fixture(scope="module")
def seed_result(sample: Path):
    return evaluate(sample / "annotations/test.json", sample / "reference/results_all.bbox.json")


def test_seed_table_all_36_numbers(seed_result) -> None:
    assert seed_result.groups == ("all", "white", "red")
    got, want = [], []
    for metric, iou, band, *values in SEED_TABLE:
        for group, v in zip(("all", "white", "red"), values, strict=True):
            got.append(round(seed_result.value(metric, iou, band=band, group=group), 3))
            want.append(v)
    assert got == want


def test_seed_table_layout_matches_readme(seed_result) -> None:
    rows = seed_result.table_rows()
    assert rows[0] == ["metric", "IoU", "area", "all", "white", "red"]
    assert [tuple(r[:3]) for r in rows[1:]] == [row[:3] for row in SEED_TABLE]
    assert "| AP | 0.50 | 0-40^2 | 0.059 | -1.000 | 0.059 |" in seed_result.table_markdown()


@pytest.mark.parametrize("colour", ["white", "red"])
def test_subgroup_equals_subset_file_exactly(sample: Path, colour: str, seed_result) -> None:
    """imgIds restriction in the full file == the README's subset files, to the last bit."""
    subset = evaluate(sample / f"reference/{colour}_coco.json",
                      sample / f"reference/results_{colour}.bbox.json", group_by=None)
    for key, value in subset.metrics.items():
        metric, iou, band, _ = key
        assert seed_result.value(metric, iou, band, colour) == value


def test_subset_precision_arrays_identical(sample: Path) -> None:
    full = json.loads((sample / "annotations/test.json").read_text())
    red = json.loads((sample / "reference/red_coco.json").read_text())
    dets = json.loads((sample / "reference/results_red.bbox.json").read_text())
    bands = [*seed_bands()]
    gt_full, gt_red = coco_from_dict(full), coco_from_dict(red)
    ids = [img["id"] for img in red["images"]]
    a = run_cocoeval(gt_full, results_coco(gt_full, dets), bands, ids)
    b = run_cocoeval(gt_red, results_coco(gt_red, dets), bands)
    assert (a.eval["precision"] == b.eval["precision"]).all()
    assert (a.eval["recall"] == b.eval["recall"]).all()


def test_dataset_input_gives_same_numbers(sample: Path, seed_result) -> None:
    from scratchdet.data.records import load_coco_records

    ds = load_coco_records(sample / "annotations/test.json")
    dets = json.loads((sample / "reference/results_all.bbox.json").read_text())
    result = evaluate(ds, dets)
    assert result.metrics == seed_result.metrics
    assert result.summaries["red"].images == 75
    assert result.summaries["all"].boxes == {"all": 179, "0-40^2": 17, "40^2-70^2": 44,
                                             "70^2-96^2": 67, "96^2-1e5^2": 52}
