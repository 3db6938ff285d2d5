"""`scratchdet data split`: seeded, stratified, disjoint, atomic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.data.split import SplitError, allocate, merge_coco, parse_ratios, split_coco

from .builders import coco_dict

runner = CliRunner()


def synthetic(n_per_stratum: int = 20) -> dict:
    images, boxes = [], []
    for colour in ("white", "red"):
        for state in ("clean", "scratched"):
            for k in range(n_per_stratum):
                image_id = len(images) + 1
                images.append((image_id, f"{colour}_{state}_{k}.jpg", 10, 10))
                if state == "scratched":
                    boxes.append((len(boxes) + 1, image_id, [1, 1, 2, 2]))
    return coco_dict(images, boxes)


def strata(coco: dict) -> Counter:
    with_boxes = {a["image_id"] for a in coco["annotations"]}
    return Counter((im["file_name"].split("_")[0], im["id"] in with_boxes) for im in coco["images"])


def test_allocate_table() -> None:
    assert allocate(20, [0.8, 0.1, 0.1]) == [16, 2, 2]
    assert allocate(7, [0.8, 0.1, 0.1]) == [5, 1, 1]  # remainders .6 < .7 = .7
    assert allocate(3, [0.5, 0.5]) == [2, 1]
    assert allocate(0, [0.5, 0.5]) == [0, 0]


def test_parse_ratios() -> None:
    assert parse_ratios("train=8,val=1,test=1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    for bad in ("train=0.8,val", "train=-1", "train=x", "a=1,a=2"):
        with pytest.raises(SplitError):
            parse_ratios(bad)


def test_stratified_disjoint_and_complete() -> None:
    coco = synthetic()
    splits = split_coco(coco, parse_ratios("train=0.8,val=0.1,test=0.1"), seed=3)
    for name, expected in (("train", 16), ("val", 2), ("test", 2)):
        assert set(strata(splits[name]).values()) == {expected}, name
    ids = [im["id"] for s in splits.values() for im in s["images"]]
    assert sorted(ids) == list(range(1, 81))  # every photo exactly once
    anns = [a["id"] for s in splits.values() for a in s["annotations"]]
    assert sorted(anns) == list(range(1, 41))
    for s in splits.values():  # boxes stay with their photo
        assert {a["image_id"] for a in s["annotations"]} <= {im["id"] for im in s["images"]}


def test_same_seed_same_split_other_seed_differs() -> None:
    ratios = parse_ratios("train=0.7,val=0.3")
    a = split_coco(synthetic(), ratios, seed=1)
    assert a == split_coco(synthetic(), ratios, seed=1)
    assert a != split_coco(synthetic(), ratios, seed=2)


def test_merge_renumbers_and_rejects_duplicates() -> None:
    a = coco_dict([(1, "white_a.jpg", 5, 5)], [(1, 1, [0, 0, 1, 1])])
    b = coco_dict([(1, "red_b.jpg", 5, 5)], [(1, 1, [0, 0, 2, 2])])
    merged = merge_coco([("a", a), ("b", b)])
    assert [im["id"] for im in merged["images"]] == [1, 2]
    assert [(x["id"], x["image_id"]) for x in merged["annotations"]] == [(1, 1), (2, 2)]
    with pytest.raises(SplitError, match=r"b: image 'white_a\.jpg' is also in a"):
        merge_coco([("a", a), ("b", a)])


def test_real_splits_merged_and_resplit(sample: Path, tmp_path: Path) -> None:
    anns = [str(sample / "annotations" / f"{s}.json") for s in ("train", "val", "test")]
    args = [
        "data",
        "split",
        *anns,
        "-o",
        str(tmp_path),
        "--ratios",
        "train=0.7,val=0.15,test=0.15",
        "--seed",
        "0",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = {s: json.loads((tmp_path / f"{s}.json").read_text()) for s in ("train", "val", "test")}
    names = [im["file_name"] for c in out.values() for im in c["images"]]
    assert len(names) == len(set(names)) == 1232
    assert sum(len(c["annotations"]) for c in out.values()) == 1718
    assert [len(c["images"]) for c in out.values()] == [862, 186, 184]
    assert "wrote" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "train.json: already exists; pass --force" in again.output
    forced = runner.invoke(app, [*args, "--force", "-q"])
    assert forced.exit_code == 0
    assert json.loads((tmp_path / "train.json").read_text()) == out["train"]


def test_cli_bad_input_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"id": 1}], "annotations": [], "categories": []}')
    result = runner.invoke(app, ["data", "split", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "bad.json: images[0] (id 1): missing key(s) file_name, width, height" in result.output
    assert not (tmp_path / "o").exists()
