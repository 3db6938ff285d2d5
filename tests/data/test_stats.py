"""`scratchdet data stats`: the seed's dataset table, present-on-disk table, md/json/png."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.data.records import (
    BoxRecord,
    Dataset,
    DatasetError,
    ImageRecord,
    load_coco_records,
    records_from_coco,
)
from scratchdet.data.stats import (
    GroupCount,
    SplitStats,
    compute_stats,
    format_summary,
    stats_json,
    write_stats,
)

from .builders import coco_dict

runner = CliRunner()


def sample_stats(sample: Path):
    datasets = {
        s: load_coco_records(sample / "annotations" / f"{s}.json", sample / s)
        for s in ("train", "val", "test")
    }
    return compute_stats(datasets)


def test_full_annotations_match_the_published_table(sample: Path) -> None:
    stats = sample_stats(sample)
    table = {
        s.name: {c: (g.photos, g.scratched, g.clean) for c, g in s.by_colour.items()}
        for s in stats.splits
    }
    assert table == {
        "train": {"white": (463, 315, 148), "red": (424, 180, 244)},
        "val": {"white": (90, 53, 37), "red": (77, 36, 41)},
        "test": {"white": (103, 52, 51), "red": (75, 36, 39)},
    }
    assert [s.total.boxes for s in stats.splits] == [1362, 177, 179]
    text = format_summary(stats)
    assert (
        "train white 463 (315/148), red 424 (180/244); val white 90 (53/37), red 77 (36/41); "
        "test white 103 (52/51), red 75 (36/39)"
    ) in text
    assert "boxes 1362 / 177 / 179 (train / val / test)" in text


def test_present_on_disk_table(sample: Path) -> None:
    stats = sample_stats(sample)
    assert stats.present is not None
    present = {s.name: s for s in stats.present}
    assert present["train"].total == GroupCount(photos=8, scratched=4, clean=4, boxes=18)
    assert present["val"].total == GroupCount(photos=16, scratched=10, clean=6, boxes=27)
    assert present["test"].total == GroupCount(0, 0, 0, 0)
    assert present["val"].by_colour["red"] == GroupCount(8, 4, 4, 4)
    assert (
        "train white 6 (4/2), red 2 (0/2); val white 8 (6/2), red 8 (4/4); test no photos"
        in format_summary(stats)
    )


def test_no_folder_no_present_table() -> None:
    coco = coco_dict(
        [(1, "white_a.jpg", 10, 10), (2, "blue_b.jpg", 10, 10)], [(1, 1, [0, 0, 3, 4])]
    )
    stats = compute_stats({"only": records_from_coco(coco)})
    assert stats.present is None
    assert stats.colours == ("white", "red", "unknown")
    split = stats.splits[0]
    assert split.by_colour["white"] == GroupCount(1, 1, 0, 1)
    assert split.by_colour["unknown"] == GroupCount(1, 0, 1, 0)
    assert split.box_sizes["white"] == (12**0.5,)
    assert "present on disk" not in format_summary(stats)


def test_write_stats_files(tmp_path: Path) -> None:
    coco = coco_dict(
        [(1, "white_a.jpg", 100, 100), (2, "red_b.jpg", 100, 100)],
        [(1, 1, [0, 0, 4, 9]), (2, 1, [0, 0, 10, 10]), (3, 2, [0, 0, 20, 20])],
    )
    files = write_stats(compute_stats({"train": records_from_coco(coco)}), tmp_path / "out")
    data = json.loads(files.json.read_text())
    assert data["splits"][0]["total"] == {"photos": 2, "scratched": 2, "clean": 0, "boxes": 3}
    assert (
        data["splits"][0]["box_size"]["min"] == 6.0 and data["splits"][0]["box_size"]["max"] == 20.0
    )
    md = files.markdown.read_text()
    assert "| train | white | 1 | 1 | 0 | 2 | 8 |" in md
    assert "![box_size_by_split](box_size_by_split.png)" in md
    assert [p.name for p in files.plots] == ["box_size_by_split.png", "box_size_by_colour.png"]
    for png in files.plots:
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size == (700, 400)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "box_size_by_colour.png",
        "box_size_by_split.png",
        "stats.json",
        "stats.md",
    ]


def test_cli_defaults_to_the_sample(sample: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCRATCHDET_SAMPLE", str(sample))
    result = runner.invoke(app, ["data", "stats", "--out", str(tmp_path), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "train white 463 (315/148), red 424 (180/244)" in result.output
    assert "photos present on disk:" in result.output
    assert (tmp_path / "stats.md").is_file() and not (tmp_path / "box_size_by_split.png").exists()


def test_cli_explicit_files(tmp_path: Path, write_coco) -> None:
    ann = write_coco(tmp_path / "mine.json", [(1, "red_a.jpg", 10, 10)], [])
    result = runner.invoke(app, ["data", "stats", str(ann)])
    assert result.exit_code == 0
    assert "mine red 1 (0/1)" in result.output and "boxes 0 (mine)" in result.output


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [([0, 0, -4, 9], "zero or negative size"), ([0, 0, float("nan"), 9], "not finite"),
     ([0, 0, 4, "9"], "expected [x, y, w, h] numbers")],
)
def test_cli_refuses_bad_boxes_before_writing_anything(
    tmp_path: Path, write_coco, bbox: list, expected: str
) -> None:
    good = write_coco(tmp_path / "train.json", [(1, "red_a.jpg", 100, 100)], [(1, 1, [0, 0, 5, 5])])
    bad = write_coco(tmp_path / "val.json", [(1, "red_b.jpg", 100, 100)],
                     [(4, 1, [1, 1, 2, 2]), (4, 1, bbox)])
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "stats", str(good), str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "refusing to compute stats (nothing written): 2 error(s):" in result.output
    assert "val.json: annotation id 4 (image id 1 'red_b.jpg'): duplicate annotation id" \
        in result.output
    assert f"val.json: annotation id 4 (image id 1 'red_b.jpg'): bbox {bbox!r}" in result.output
    assert expected in result.output
    assert not out.exists()


def test_records_built_by_hand_are_checked_too(tmp_path: Path) -> None:
    box = BoxRecord(3, 1, 1, (0.0, 0.0, -4.0, 9.0))
    data = Dataset((ImageRecord(1, "red_a.jpg", 10, 10, (box,)),), {1: "scratch"})
    with pytest.raises(DatasetError, match=r"train: annotation id 3 \(image id 1 'red_a.jpg'\): "
                                           r"bbox \[0.0, 0.0, -4.0, 9.0\]: zero or negative"):
        compute_stats({"train": data})


def test_stats_json_never_holds_a_bare_nan() -> None:
    stats = compute_stats({"train": records_from_coco(coco_dict([(1, "red_a.jpg", 9, 9)], []))})
    odd = SplitStats("odd", {}, GroupCount(0, 0, 0, 0), {"red": (float("nan"), 4.0)})
    text = stats_json(type(stats)((odd,), None, stats.colours))
    assert "NaN" not in text
    assert json.loads(text)["splits"][0]["box_size"]["min"] is None
