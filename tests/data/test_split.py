"""`scratchdet data split`: seeded, stratified, disjoint, atomic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.data.split import (
    SplitError,
    allocate,
    merge_coco,
    parse_ratios,
    shuffled_strata,
    split_coco,
    stratified_folds,
    subset_coco,
)

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


def seven() -> dict:
    """White scratched 1, 2, 3 (two boxes on 1), white clean 4, red scratched 5, red clean
    6, 7."""
    names = ["white_a", "white_b", "white_c", "white_d", "red_e", "red_f", "red_g"]
    images = [(i, f"{n}.jpg", 5, 5) for i, n in enumerate(names, start=1)]
    boxes = [(1, 1, [0, 0, 1, 1]), (2, 2, [0, 0, 1, 1]), (3, 3, [0, 0, 1, 1]),
             (4, 5, [0, 0, 1, 1]), (5, 1, [1, 1, 1, 1])]
    return coco_dict(images, boxes)


def test_shuffled_strata_exact() -> None:
    # strata in sorted order: (red, clean), (red, scratched), (white, clean), (white, scratched)
    got = [[im["id"] for im in members] for members in shuffled_strata(seven(), seed=0)]
    assert got == [[6, 7], [5], [4], [3, 1, 2]]


def test_split_exact_table() -> None:
    # pinned per seed (the cuts of the code before the strata were shared with the folds)
    expected = {0: ({"train": [1, 3, 4, 5, 6], "val": [2, 7]}, {"train": [1, 3, 4, 5],
                                                                 "val": [2]}),
                1: ({"train": [1, 2, 4, 5, 7], "val": [3, 6]}, {"train": [1, 2, 4, 5],
                                                                 "val": [3]})}
    for seed, (photos, boxes) in expected.items():
        splits = split_coco(seven(), {"train": 0.6, "val": 0.4}, seed=seed)
        assert {k: [im["id"] for im in v["images"]] for k, v in splits.items()} == photos
        assert {k: [a["id"] for a in v["annotations"]] for k, v in splits.items()} == boxes


def test_stratified_folds_exact_table() -> None:
    # the shuffled strata dealt round-robin, the deal going on from stratum to stratum
    assert stratified_folds(seven(), 2, seed=0) == [[6, 5, 3, 2], [7, 4, 1]]
    assert stratified_folds(seven(), 2, seed=1) == [[7, 5, 2, 3], [6, 4, 1]]
    assert stratified_folds(seven(), 3, seed=0) == [[6, 4, 2], [7, 3], [5, 1]]
    assert stratified_folds(seven(), 7) == [[6], [7], [5], [4], [3], [1], [2]]
    with pytest.raises(SplitError, match="at least 2 folds, got 1"):
        stratified_folds(seven(), 1)
    with pytest.raises(SplitError, match="7 photos cannot fill 8 folds"):
        stratified_folds(seven(), 8)


def test_subset_coco_keeps_ids_order_and_boxes() -> None:
    coco = {**seven(), "info": {"year": 2024}}
    sub = subset_coco(coco, {5, 1, 4})
    assert list(sub) == ["categories", "images", "annotations"]  # no "info"
    assert sub["categories"] == coco["categories"] and sub["categories"] is not coco["categories"]
    assert [im["id"] for im in sub["images"]] == [1, 4, 5]
    assert [(a["id"], a["image_id"]) for a in sub["annotations"]] == [(1, 1), (4, 5), (5, 1)]
    assert subset_coco(coco, set()) == {"categories": coco["categories"], "images": [],
                                        "annotations": []}


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
    assert again.exit_code == 2 and "train.json: already exists; pass --force" in again.output
    forced = runner.invoke(app, [*args, "--force", "-q"])
    assert forced.exit_code == 0
    assert json.loads((tmp_path / "train.json").read_text()) == out["train"]


def test_cli_bad_input_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"id": 1}], "annotations": [], "categories": []}')
    result = runner.invoke(app, ["data", "split", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.json: images[0] (id 1): missing key(s) file_name, width, height" in result.output
    assert not (tmp_path / "o").exists()
