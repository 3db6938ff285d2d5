"""``scratchdet data from-history``: a history with operator decisions (made through the API
with the tiny random model) -> a COCO training set that ``data validate`` passes and the
training data module loads, alone and merged with the sample as the README says."""

from __future__ import annotations

import io
import json
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.data.validate import validate_coco
from scratchdet.service.config import ServiceSettings
from service.helpers import photo_bytes

runner = CliRunner()


def rotated_jpeg() -> bytes:
    """A 480x320 JPEG whose EXIF says 'rotate 90° clockwise' (upright: 320x480)."""
    image = Image.open(io.BytesIO(photo_bytes(seed=5)))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def inspect(client: TestClient, name: str, data: bytes | None = None, **fields: str) -> dict:
    photo = {"photo": (name, data or photo_bytes(seed=len(name)), "image/jpeg")}
    response = client.post("/v1/inspect", files=photo, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def decide(client: TestClient, inspection: dict, decision: str, boxes: list | None = None,
           ) -> None:
    body: dict = {"decision": decision}
    if boxes is not None:
        body["boxes"] = boxes
    response = client.post(f"/v1/inspections/{inspection['id']}/decisions", json=body)
    assert response.status_code == 201, response.text


def make_reviewed_history(client: TestClient, storage: Path) -> dict[str, dict]:
    """Seven inspections: four usable, one unreviewed, one incomplete, one photo gone."""
    made = {
        "confirmed": inspect(client, "white_a.jpg", serial="A1"),
        "false_alarm": inspect(client, "red_b.jpg"),
        "missed": inspect(client, "c.jpg", threshold="0.99"),  # nothing kept: a pass
        "incomplete": inspect(client, "white_d.jpg"),
        "unreviewed": inspect(client, "white_e.jpg"),
        "rotated": inspect(client, "white_f.jpg", rotated_jpeg()),
        "gone": inspect(client, "white_g.jpg"),
    }
    assert made["missed"]["verdict"] == "pass" and made["confirmed"]["num_boxes"] > 0
    assert (made["rotated"]["width"], made["rotated"]["height"]) == (320, 480)
    decide(client, made["confirmed"], "confirm", [[10, 20, 110, 60]])
    decide(client, made["false_alarm"], "confirm")  # first confirmed, then taken back:
    decide(client, made["false_alarm"], "false_alarm")
    decide(client, made["missed"], "missed", [[5, 5, 50, 40], [200, 100, 260, 300]])
    decide(client, made["incomplete"], "missed", [[1, 1, 9, 9]])
    decide(client, made["rotated"], "missed", [[10, 400, 300, 470]])
    decide(client, made["rotated"], "false_alarm")
    decide(client, made["gone"], "false_alarm")
    (storage / f"{made['gone']['id']}.jpg").unlink()
    return made


def test_from_history_exports_a_valid_coco_set(
    client: TestClient, settings: ServiceSettings, tmp_path: Path
) -> None:
    made = make_reviewed_history(client, settings.storage_dir)
    out = tmp_path / "harvest"
    args = ["data", "from-history", "--db", settings.db_url, "--storage",
            str(settings.storage_dir), "--out", str(out), "--colour", "white"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "4 photos (1 clean, 3 with 4 scratch boxes)" in result.output
    assert "left out: 1 unreviewed inspections, 1 incomplete" in result.output
    assert "1 whose photo is gone" in result.output
    assert "1 photos written upright" in result.output

    coco = json.loads((out / "annotations.json").read_text())
    assert coco["categories"] == [{"id": 1, "name": "scratch"}]
    names = {img["file_name"]: img for img in coco["images"]}
    short = {key: made[key]["id"][:8] for key in made}
    assert set(names) == {f"white_a_{short['confirmed']}.jpg", f"red_b_{short['false_alarm']}.jpg",
                          f"white_c_{short['missed']}.jpg", f"white_f_{short['rotated']}.jpg"}
    boxes: dict[str, list] = {name: [] for name in names}
    by_id = {img["id"]: name for name, img in names.items()}
    for ann in coco["annotations"]:
        boxes[by_id[ann["image_id"]]].append(ann["bbox"])
        assert (ann["category_id"], ann["iscrowd"]) == (1, 0)
    assert boxes[f"white_a_{short['confirmed']}.jpg"] == [[10, 20, 100, 40]]
    assert boxes[f"red_b_{short['false_alarm']}.jpg"] == []
    assert boxes[f"white_c_{short['missed']}.jpg"] == [[5, 5, 45, 35], [200, 100, 60, 200]]
    assert boxes[f"white_f_{short['rotated']}.jpg"] == [[10, 400, 290, 70]]
    with Image.open(out / "images" / f"white_f_{short['rotated']}.jpg") as upright:
        assert upright.size == (320, 480) and upright.getexif().get(0x0112, 1) == 1
    sources = json.loads((out / "inspections.json").read_text())
    assert [s["inspection_id"] for s in sources][:1] == [made["confirmed"]["id"]]

    report = validate_coco(out / "annotations.json", out / "images")
    assert report.errors == [] and report.warnings == [], report.summary()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output


def test_from_history_loads_for_training_alone_and_merged(
    client: TestClient, settings: ServiceSettings, tmp_path: Path, sample: Path
) -> None:
    from scratchdet.training.config import TrainConfig
    from scratchdet.training.datamodule import DetectionDataModule

    make_reviewed_history(client, settings.storage_dir)
    out = tmp_path / "harvest"
    assert runner.invoke(app, ["data", "from-history", "--db", settings.db_url, "--storage",
                               str(settings.storage_dir), "--out", str(out), "--link"]
                         ).exit_code == 0
    assert all((out / "images" / p.name).is_symlink() or p.suffix == ".jpg"
               for p in (out / "images").iterdir())
    alone = DetectionDataModule(TrainConfig(
        train_annotations=out / "annotations.json", train_images=out / "images",
        val_annotations=out / "annotations.json", val_images=out / "images"))
    assert (len(alone.train_data), alone.train_data.num_boxes, alone.class_names) == (
        4, 4, ["scratch"])

    # The README's recipe: merge with the sample's train split, one folder of links.
    merged = tmp_path / "merged"
    split = runner.invoke(app, ["data", "split", str(sample / "annotations" / "train.json"),
                                str(out / "annotations.json"), "--ratios", "train=1",
                                "-o", str(merged), "-q"])
    assert split.exit_code == 0, split.output
    images = merged / "images"
    images.mkdir()
    for folder in (sample / "train", out / "images"):
        for photo in folder.iterdir():
            (images / photo.name).symlink_to(photo.resolve())
    both = DetectionDataModule(TrainConfig(
        train_annotations=merged / "train.json", train_images=images,
        val_annotations=sample / "annotations" / "val.json", val_images=sample / "val"))
    sample_photos = len(list((sample / "train").iterdir()))  # (a part of train.json's)
    assert len(both.train_data) == sample_photos + 4
    harvested = {img["file_name"] for img in
                 json.loads((out / "annotations.json").read_text())["images"]}
    assert harvested <= {r.file_name for r in both.train_data.images}
    assert both.class_names == ["scratch"]
