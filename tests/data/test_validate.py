"""`scratchdet data validate`: every problem reported with file, record and expectation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.data.validate import validate_coco

from .builders import png_claiming

runner = CliRunner()


def validate(ann: Path, images: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["data", "validate", str(ann), str(images), "--quiet", *extra])
    return result.exit_code, result.output


def test_valid_dataset_passes(tiny_dataset: Path) -> None:
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img")
    assert code == 0
    assert out == ""
    report = validate_coco(tiny_dataset, tiny_dataset.parent / "img")
    assert (report.num_images, report.num_boxes, report.num_photos_checked) == (2, 2, 2)
    assert report.problems == []


def test_summary_without_quiet(tiny_dataset: Path) -> None:
    result = runner.invoke(
        app, ["data", "validate", str(tiny_dataset), str(tiny_dataset.parent / "img")]
    )
    assert result.exit_code == 0
    assert (
        "2 photos, 2 boxes; 2 photos checked, 0 missing; 0 error(s), 0 warning(s)" in result.output
    )


def test_missing_photo(tiny_dataset: Path) -> None:
    (tiny_dataset.parent / "img" / "red_b.jpg").unlink()
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img")
    assert code == 1
    assert "ERROR:" in out
    assert "image id 2 'red_b.jpg': missing photo: 'red_b.jpg' not found in" in out


def test_only_present_turns_missing_into_one_warning(tiny_dataset: Path) -> None:
    (tiny_dataset.parent / "img" / "red_b.jpg").unlink()
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img", "--only-present")
    assert code == 0
    assert out.count("WARNING:") == 1
    assert "1 of 2 photos listed are not in" in out


def test_unreadable_photo(tiny_dataset: Path) -> None:
    (tiny_dataset.parent / "img" / "red_b.jpg").write_text("not an image")
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img")
    assert code == 1
    assert "red_b.jpg: image id 2 'red_b.jpg': unreadable" in out


def test_truncated_jpeg(tiny_dataset: Path) -> None:
    path = tiny_dataset.parent / "img" / "red_b.jpg"
    Image.effect_noise((64, 48), 60).convert("RGB").save(path, "JPEG", quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img")
    assert code == 1
    assert "'red_b.jpg': truncated or corrupt image" in out
    # the header alone still reads fine: --no-decode does not see it
    assert validate(tiny_dataset, tiny_dataset.parent / "img", "--no-decode")[0] == 0


def test_size_differs_from_json(tiny_dataset: Path, make_jpeg) -> None:
    make_jpeg(tiny_dataset.parent / "img" / "red_b.jpg", size=(60, 48))
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img")
    assert code == 1
    assert "decoded size 60x48 differs from width x height 64x48 in the json" in out


def test_exif_orientation_not_1(tiny_dataset: Path, make_jpeg) -> None:
    make_jpeg(tiny_dataset.parent / "img" / "white_a.jpg", orientation=6)
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img")
    assert code == 1
    assert "image id 1 'white_a.jpg': EXIF orientation 6 (expected 1)" in out
    assert "boxes would no longer match" in out


def test_exif_orientation_1_is_fine(tiny_dataset: Path, make_jpeg) -> None:
    make_jpeg(tiny_dataset.parent / "img" / "white_a.jpg", orientation=1)
    assert validate(tiny_dataset, tiny_dataset.parent / "img")[0] == 0


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ([60, 3, 10, 5], "is outside the 64x48 photo"),
        ([-1, 3, 10, 5], "is outside the 64x48 photo"),
        ([2, 40, 10, 9], "is outside the 64x48 photo"),
        ([2, 3, 0, 5], "zero or negative size (expected w > 0 and h > 0)"),
        ([2, 3, 10, -4], "zero or negative size (expected w > 0 and h > 0)"),
        ([2, 3, 10], "expected [x, y, w, h] numbers"),
        ([2, 3, float("nan"), 5], "not finite (NaN or infinity; expected 4 finite numbers)"),
        ([2, 3, 10, float("inf")], "not finite (NaN or infinity; expected 4 finite numbers)"),
        ([float("-inf"), 3, 10, 5], "not finite (NaN or infinity; expected 4 finite numbers)"),
        (["2", 3, 10, 5], "expected [x, y, w, h] numbers"),
        ([2, 3, True, 5], "expected [x, y, w, h] numbers"),
    ],
)
def test_bad_box(tmp_path: Path, make_jpeg, write_coco, bbox: list[float], expected: str) -> None:
    make_jpeg(tmp_path / "img" / "white_a.jpg")
    ann = write_coco(tmp_path / "a.json", [(1, "white_a.jpg", 64, 48)], [(7, 1, bbox)])
    code, out = validate(ann, tmp_path / "img")
    assert code == 1
    assert f"a.json: annotation id 7 (image id 1 'white_a.jpg'): bbox {bbox!r}" in out
    assert expected in out
    assert out.count("ERROR:") == 1


def test_nan_area_is_an_error_and_json_nan_is_parsed(tmp_path: Path, make_jpeg) -> None:
    make_jpeg(tmp_path / "img" / "white_a.jpg")
    ann = tmp_path / "a.json"  # Python's json writes and reads the non-standard NaN token
    ann.write_text('{"categories": [{"id": 1, "name": "s"}], "images": [{"id": 1, "file_name": '
                   '"white_a.jpg", "width": 64, "height": 48}], "annotations": [{"id": 3, '
                   '"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": NaN}]}')
    code, out = validate(ann, tmp_path / "img")
    assert code == 1
    assert "annotation id 3 (image id 1 'white_a.jpg'): area nan: expected a finite number" in out


def test_duplicate_ids_unknown_image_and_category_all_reported(tmp_path: Path, make_jpeg) -> None:
    make_jpeg(tmp_path / "img" / "white_a.jpg")
    make_jpeg(tmp_path / "img" / "white_b.jpg")
    coco = {
        "categories": [{"id": 1, "name": "scratch"}],
        "images": [
            {"id": 1, "file_name": "white_a.jpg", "width": 64, "height": 48},
            {"id": 1, "file_name": "white_b.jpg", "width": 64, "height": 48},
        ],
        "annotations": [
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]},
            {"id": 6, "image_id": 99, "category_id": 1, "bbox": [1, 1, 4, 4]},
            {"id": 7, "image_id": 1, "category_id": 3, "bbox": [1, 1, 4, 4]},
        ],
    }
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps(coco))
    code, out = validate(ann, tmp_path / "img")
    assert code == 1
    assert "image id 1 'white_b.jpg': duplicate image id (also used by 'white_a.jpg')" in out
    assert "annotation id 5 (image id 1 'white_a.jpg'): duplicate annotation id (also " \
        "annotations[0])" in out
    assert "annotation id 6: image_id 99 is not an image of this file" in out
    assert "annotation id 7 (image id 1 'white_a.jpg'): unknown category_id 3 (known: 1)" in out
    # white_b.jpg is on disk but its record was a duplicate: not listed -> warning, kept apart
    assert "white_b.jpg: photo on disk is not listed in" in out
    assert out.count("ERROR:") == 4 and out.count("WARNING:") == 1


def test_malformed_json_line_and_column(tmp_path: Path) -> None:
    ann = tmp_path / "bad.json"
    ann.write_text('{\n  "images": [\n    {"id": 1,, "file_name": "x.jpg"}\n  ]\n}\n')
    code, out = validate(ann, tmp_path)
    assert code == 1
    assert "bad.json: malformed JSON at line 3, column 14: Expecting property name" in out


def test_missing_sections_and_bad_records(tmp_path: Path) -> None:
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps({"images": [{"id": "1", "file_name": "x.jpg"}], "annotations": []}))
    code, out = validate(ann, tmp_path)
    assert code == 1
    assert "expected a list under 'categories', got nothing" in out
    assert "images[0] image id 1 'x.jpg': missing or invalid id, width, height" in out


def test_warnings_alone_exit_zero(tiny_dataset: Path, make_jpeg) -> None:
    make_jpeg(tiny_dataset.parent / "img" / "extra.jpg")
    result = runner.invoke(
        app, ["data", "validate", str(tiny_dataset), str(tiny_dataset.parent / "img")]
    )
    assert result.exit_code == 0
    assert "warnings (1):" in result.output and "errors" not in result.output.split("warnings")[0]
    assert "extra.jpg: photo on disk is not listed in" in result.output


def test_nothing_is_modified(tiny_dataset: Path, make_jpeg) -> None:
    make_jpeg(tiny_dataset.parent / "img" / "white_a.jpg", orientation=6)
    files = [tiny_dataset, *sorted((tiny_dataset.parent / "img").iterdir())]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    assert validate(tiny_dataset, tiny_dataset.parent / "img")[0] == 1
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    assert sorted(tiny_dataset.parent.rglob("*")) == sorted([*files, tiny_dataset.parent / "img"])


def test_real_val_split_reports_missing_photos(sample: Path) -> None:
    ann, folder = sample / "annotations" / "val.json", sample / "val"
    report = validate_coco(ann, folder)
    assert (report.num_images, report.num_boxes) == (167, 177)
    assert report.num_photos_checked == 16 and report.num_missing == 151
    assert len(report.errors) == 151
    assert all("missing photo" in e.message for e in report.errors)
    code, out = validate(ann, folder, "--only-present")
    assert code == 0
    assert "151 of 167 photos listed are not in" in out


def test_real_train_photos_are_valid(sample: Path) -> None:
    report = validate_coco(
        sample / "annotations" / "train.json", sample / "train", only_present=True
    )
    assert report.num_photos_checked == 8
    assert report.errors == []


def test_wrong_types_and_missing_folder(tmp_path: Path) -> None:
    coco = {
        "categories": [{"id": 1, "name": "scratch"}],
        "images": [{"id": 1, "file_name": "white_a.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": [1], "category_id": {"x": 1}, "bbox": [1, 1, 2, 2]}],
    }
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps(coco))
    code, out = validate(ann, tmp_path / "nowhere")
    assert code == 2  # a missing input is a usage error; the json is still checked
    assert "annotation id 1: image_id [1] is not an image of this file" in out
    assert "annotation id 1: unknown category_id {'x': 1} (known: 1)" in out
    assert "nowhere: image folder not found" in out


def test_real_photo_truncated(sample: Path, tmp_path: Path, write_coco) -> None:
    data = (sample / "train" / "red_DSC_0618.JPG").read_bytes()
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "red_DSC_0618.JPG").write_bytes(data[: int(len(data) * 0.9)])
    ann = write_coco(tmp_path / "a.json", [(1, "red_DSC_0618.JPG", 4608, 3072)], [])
    code, out = validate(ann, tmp_path / "img")
    assert code == 1
    assert (
        "image id 1 'red_DSC_0618.JPG': truncated or corrupt image: image file is truncated" in out
    )


def test_decompression_bomb_is_one_error_and_the_report_goes_on(
    tmp_path: Path, make_jpeg, write_coco
) -> None:
    make_jpeg(tmp_path / "img" / "white_a.jpg", size=(60, 48))  # size differs: still reported
    png_claiming(tmp_path / "img" / "red_bomb.png", 20000)
    make_jpeg(tmp_path / "img" / "red_c.jpg")
    images = [(1, "white_a.jpg", 64, 48), (2, "red_bomb.png", 20000, 20000),
              (3, "red_c.jpg", 64, 48)]
    ann = write_coco(tmp_path / "a.json", images, [(1, 3, [2, 3, 10, float("nan")])])
    code, out = validate(ann, tmp_path / "img")
    assert code == 1
    assert "red_bomb.png: image id 2 'red_bomb.png': refused as a possible decompression " \
        "bomb" in out
    assert "decoded size 60x48 differs from width x height 64x48" in out
    assert "annotation id 1 (image id 3 'red_c.jpg'): bbox [2, 3, 10, nan]: not finite" in out
    assert out.count("ERROR:") == 3
    report = validate_coco(ann, tmp_path / "img")
    assert report.num_photos_checked == 3


def test_decompression_bomb_warning_zone_is_an_error(
    tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PIL only warns between MAX_IMAGE_PIXELS and twice that: reported as an error too."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # the 64x48 photos: 3072 pixels
    code, out = validate(tiny_dataset, tiny_dataset.parent / "img", "--no-decode")
    assert code == 1
    assert out.count("refused as a possible decompression bomb") == 2
