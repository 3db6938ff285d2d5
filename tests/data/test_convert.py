"""`scratchdet data convert`: labelling exports + photo folders -> COCO."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.data.convert import ConvertError, convert_exports

runner = CliRunner()


def task(name: str, marks: list[tuple[int, int, int, int]], person: str = "p1") -> dict[str, Any]:
    boxes = [
        {"id": f"m{i}", "type": "bbox", "position": {"x": x, "y": y, "width": w, "height": h}}
        for i, (x, y, w, h) in enumerate(marks)
    ]
    return {"file_name": name, "skip": {}, "result": {person: {"result": {"marks": boxes}}}}


def write_export(folder: Path, tasks: list[dict[str, Any]], name: str = "export.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(tasks))
    return folder / name


def boxes_by_name(coco: dict[str, Any]) -> dict[str, list[list[float]]]:
    names = {im["id"]: im["file_name"] for im in coco["images"]}
    out: dict[str, list[list[float]]] = defaultdict(list)
    for ann in coco["annotations"]:
        out[names[ann["image_id"]]].append(ann["bbox"])
    return dict(out)


def test_golden_all_exports_reproduce_every_box(sample: Path) -> None:
    result = convert_exports(
        [sample / "labeling-exports"], [sample / "train", sample / "val"], (4608, 3072)
    )
    got = boxes_by_name(result.coco)
    total = 0
    for split in ("train", "val", "test"):
        ref = json.loads((sample / "annotations" / f"{split}.json").read_text())
        for name, boxes in boxes_by_name(ref).items():
            assert got[name] == boxes, name  # same boxes, same order
            total += len(boxes)
    assert total == 1718
    assert len(result.coco["annotations"]) == 1718
    assert sum(len(b) for b in got.values()) == 1718
    # 672 labelled photos + the 10 clean photos of the sample folders
    assert len(result.coco["images"]) == 682
    clean = {im["file_name"] for im in result.coco["images"]} - set(got)
    assert "white_train_clean_img344.JPG" in clean and len(clean) == 10
    assert all(a["area"] == a["bbox"][2] * a["bbox"][3] for a in result.coco["annotations"])


def test_prefix_clean_photos_and_sizes(tmp_path: Path, make_jpeg) -> None:
    write_export(tmp_path / "exp" / "white", [task("A.jpg", [(1, 2, 3, 4), (5, 6, 7, 8)])])
    write_export(tmp_path / "exp" / "red", [task("B.jpg", [(9, 9, 2, 2)])])
    make_jpeg(tmp_path / "img" / "white_A.jpg", size=(40, 30))
    make_jpeg(tmp_path / "img" / "red_clean.jpg", size=(20, 10))
    result = convert_exports([tmp_path / "exp"], [tmp_path / "img"], default_size=(100, 50))
    images = {im["file_name"]: im for im in result.coco["images"]}
    assert sorted(images) == ["red_B.jpg", "red_clean.jpg", "white_A.jpg"]
    assert [images[n]["id"] for n in sorted(images)] == [1, 2, 3]
    assert (images["white_A.jpg"]["width"], images["white_A.jpg"]["height"]) == (40, 30)
    assert (images["red_clean.jpg"]["width"], images["red_clean.jpg"]["height"]) == (20, 10)
    assert (images["red_B.jpg"]["width"], images["red_B.jpg"]["height"]) == (100, 50)
    assert boxes_by_name(result.coco) == {
        "white_A.jpg": [[1, 2, 3, 4], [5, 6, 7, 8]],
        "red_B.jpg": [[9, 9, 2, 2]],
    }
    assert [a["id"] for a in result.coco["annotations"]] == [1, 2, 3]
    assert result.coco["categories"] == [{"id": 1, "name": "scratch"}]


def test_missing_size_without_default_is_an_error(tmp_path: Path) -> None:
    write_export(tmp_path / "white", [task("A.jpg", [(1, 2, 3, 4)])])
    with pytest.raises(
        ConvertError, match=r"'white_A\.jpg': photo not in the image folders.*--default-size"
    ):
        convert_exports([tmp_path / "white"])


def test_several_people_need_person(tmp_path: Path) -> None:
    t = task("A.jpg", [(1, 2, 3, 4)], person="p1")
    t["result"]["p2"] = {"result": {"marks": []}}
    path = write_export(tmp_path / "white", [t])
    with pytest.raises(ConvertError, match=r"export.json task 0 \('A.jpg'\): 2 people's results"):
        convert_exports([path], default_size=(10, 10))
    coco = convert_exports([path], default_size=(10, 10), person="p2").coco
    assert coco["annotations"] == [] and len(coco["images"]) == 1


def test_bad_mark_and_skipped_task(tmp_path: Path) -> None:
    bad = task("A.jpg", [(1, 2, 3, 4)])
    bad["result"]["p1"]["result"]["marks"][0]["type"] = "polygon"
    with pytest.raises(
        ConvertError,
        match=r"task 0 \('A.jpg'\) mark 0: expected a mark of type 'bbox', got 'polygon'",
    ):
        convert_exports([write_export(tmp_path / "white", [bad])], default_size=(10, 10))
    skipped = task("C.jpg", [])
    skipped["skip"] = {"p1": "blurry"}
    result = convert_exports([write_export(tmp_path / "red", [skipped])], default_size=(10, 10))
    assert result.coco["images"] == []
    assert "skipped by the labeller" in result.notes[0]


def test_cli_refuses_overwrite_and_writes_atomically(tmp_path: Path, make_jpeg) -> None:
    write_export(tmp_path / "exp" / "white", [task("A.jpg", [(1, 2, 3, 4)])])
    make_jpeg(tmp_path / "img" / "white_A.jpg")
    out = tmp_path / "out.json"
    args = ["data", "convert", str(tmp_path / "exp"), "-i", str(tmp_path / "img"), "-o", str(out)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "1 labelled photos (1 boxes)" in first.output
    written = out.read_text()
    assert boxes_by_name(json.loads(written)) == {"white_A.jpg": [[1, 2, 3, 4]]}
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "out.json: already exists; pass --force to overwrite it" in again.output
    assert out.read_text() == written
    forced = runner.invoke(app, [*args, "--force", "--quiet"])
    assert forced.exit_code == 0 and forced.output == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "img", "out.json"]  # no temp left


def test_cli_bad_default_size(tmp_path: Path) -> None:
    write_export(tmp_path / "white", [task("A.jpg", [(1, 2, 3, 4)])])
    args = ["data", "convert", str(tmp_path / "white"), "-o", str(tmp_path / "o.json")]
    result = runner.invoke(app, [*args, "--default-size", "4608*3072"])
    assert result.exit_code == 2
    assert "expected WIDTHxHEIGHT, e.g. 4608x3072" in result.output
    assert runner.invoke(app, [*args, "--default-size", "4608x3072"]).exit_code == 0
