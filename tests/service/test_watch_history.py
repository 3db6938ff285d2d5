"""``scratchdet watch --db``: watched photos land in the service's history, once each, and the
service serves them like uploads."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.service.config import ServiceSettings
from service.helpers import photo_bytes


def test_watched_photos_are_in_the_history(client: TestClient, settings: ServiceSettings,
                                           untrained_model: Path, tmp_path: Path) -> None:
    folder, done = tmp_path / "camera", tmp_path / "done"
    folder.mkdir()
    data = photo_bytes(320, 240)
    (folder / "part_0001.jpg").write_bytes(data)
    args = ["watch", str(untrained_model), str(folder), "--once", "--settle", "0.1",
            "--poll", "0.05", "--move-to", str(done), "--threshold", "0.99",
            "--db", settings.db_url]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    verdict, name = res.stdout.split()[:2]
    assert verdict in ("PASS", "FAIL") and name == "part_0001.jpg"
    page = client.get("/v1/inspections").json()
    assert page["total"] == 1
    [row] = page["items"]
    assert row["filename"] == "part_0001.jpg" and row["verdict"] == verdict.lower()
    assert row["threshold"] == 0.99 and (row["width"], row["height"]) == (320, 240)
    assert row["model_id"].startswith("model.pt@")
    photo = client.get(f"/v1/inspections/{row['id']}/photo")
    assert photo.status_code == 200 and photo.content == data  # where watch moved it
    assert (done / "part_0001.jpg").read_bytes() == data

    (folder / "part_0002.jpg").write_bytes(photo_bytes(320, 240, seed=3))
    storage = tmp_path / "photos"
    res = CliRunner().invoke(app, [*args, "--storage", str(storage)])
    assert res.exit_code == 0, res.output
    assert [line.split()[1] for line in res.stdout.splitlines()] == ["part_0002.jpg"]
    page = client.get("/v1/inspections").json()
    assert page["total"] == 2  # the first photo was not recorded twice
    newest = page["items"][0]
    assert newest["filename"] == "part_0002.jpg"
    assert list(storage.iterdir()) == [storage / f"{newest['id']}.jpg"]
