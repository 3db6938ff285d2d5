"""Dataset records: COCO json + folder -> typed records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scratchdet.data.records import (
    DatasetError,
    colour_from_name,
    load_coco_records,
    records_from_coco,
    to_coco,
)

from .builders import coco_dict


def test_colour_from_prefix() -> None:
    assert colour_from_name("red_DSC_0618.JPG") == "red"
    assert colour_from_name("sub/White_x.jpg") == "white"
    assert colour_from_name("redish_x.jpg") == "unknown"
    assert colour_from_name("blue_x.jpg", colours=("blue",)) == "blue"


def test_records_attributes_and_custom_colour() -> None:
    coco = coco_dict([(1, "white_a.jpg", 10, 8), (2, "red_b.jpg", 10, 8)], [(5, 1, [1, 2, 3, 4])])
    ds = records_from_coco(coco)
    a, b = ds.images
    assert (a.colour, a.attributes["state"], a.scratched) == ("white", "scratched", True)
    assert (b.colour, b.attributes["state"], b.scratched) == ("red", "clean", False)
    assert a.boxes[0].bbox == (1.0, 2.0, 3.0, 4.0) and a.boxes[0].area == 12.0
    assert ds.num_boxes == 1 and ds.categories == {1: "scratch"}
    custom = records_from_coco(coco, colour_of=lambda name: "grey" if "a" in name else "other")
    assert [r.colour for r in custom.images] == ["grey", "other"]


def test_only_present_and_missing_summary(tmp_path: Path, make_jpeg, write_coco) -> None:
    make_jpeg(tmp_path / "img" / "white_a.jpg")
    ann = write_coco(
        tmp_path / "a.json", [(1, "white_a.jpg", 64, 48), (2, "red_b.jpg", 64, 48)], []
    )
    every = load_coco_records(ann, tmp_path / "img")
    assert len(every) == 2 and [r.path is not None for r in every.images] == [True, False]
    assert every.missing == ("red_b.jpg",)
    assert every.describe_missing().endswith(
        f"1 of 2 photos listed are not in {tmp_path / 'img'} (1 present)"
    )
    present = load_coco_records(ann, tmp_path / "img", only_present=True)
    assert [r.file_name for r in present.images] == ["white_a.jpg"]
    assert present.missing == ("red_b.jpg",)
    assert load_coco_records(ann).describe_missing() == ""


def test_errors_name_file_and_record(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [\n  {"id": 1,\n]}')
    with pytest.raises(DatasetError, match=r"bad.json: line 3, column 1: malformed JSON"):
        load_coco_records(bad)
    coco = coco_dict([(1, "a.jpg", 5, 5)], [(9, 1, [1, 2, 3])])
    with pytest.raises(
        DatasetError, match=r"annotations\[0\] \(id 9\): bbox must be \[x, y, w, h\]"
    ):
        records_from_coco(coco, source=Path("x.json"))
    del coco["images"][0]["width"]
    coco["annotations"] = []
    with pytest.raises(DatasetError, match=r"x.json: images\[0\] \(id 1\): missing key\(s\) width"):
        records_from_coco(coco, source=Path("x.json"))


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ([1, 2, float("nan"), 4], "not finite"),
        ([1, 2, 3, float("inf")], "not finite"),
        ([1, 2, -3, 4], "zero or negative size"),
        ([1, 2, 3, 0], "zero or negative size"),
        (["1", 2, 3, 4], "expected \\[x, y, w, h\\] numbers"),
        ([1, 2, None, 4], "expected \\[x, y, w, h\\] numbers"),
    ],
)
def test_bad_box_values_are_refused(bbox: list, expected: str) -> None:
    coco = coco_dict([(1, "a.jpg", 5, 5)], [(9, 1, bbox)])
    with pytest.raises(DatasetError, match=rf"x.json: annotations\[0\] \(id 9, image_id 1\): "
                                           rf"bbox .*{expected}"):
        records_from_coco(coco, source=Path("x.json"))


def test_to_coco_round_trip() -> None:
    coco = coco_dict([(3, "white_a.jpg", 10, 8)], [(7, 3, [1, 2, 3, 4])])
    back = to_coco(records_from_coco(coco))
    assert back["images"] == coco["images"]
    assert back["annotations"] == [
        {
            "id": 7,
            "image_id": 3,
            "category_id": 1,
            "iscrowd": 0,
            "area": 12.0,
            "bbox": [1.0, 2.0, 3.0, 4.0],
        }
    ]


def test_real_sample_val(sample: Path) -> None:
    ds = load_coco_records(sample / "annotations" / "val.json", sample / "val", only_present=True)
    assert len(ds) == 16 and len(ds.missing) == 151 and ds.num_boxes == 27
    assert all(r.path is not None and r.path.is_file() for r in ds.images)
    assert (ds.images[0].width, ds.images[0].height) == (4608, 3072)
    assert json.loads((sample / "annotations" / "val.json").read_text())["categories"] == [
        {"id": 1, "name": "scratch"}
    ]
