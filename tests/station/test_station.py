"""The station install (no torch): predict and serve an exported model, refuse what needs torch.

Runs in both venvs. In the station venv (``make station-test``, ``SCRATCHDET_STATION=1``) the
model and the reference predictions come from ``$SCRATCHDET_STATION_DIR``, made in the full
venv by ``python -m tests.station.fixture``; in the full venv the fixture is made on the spot.
"""

from __future__ import annotations

import importlib.util
import io
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from tests.station.fixture import PHOTOS, make_fixture, predict_args
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.commands.extras import TRAIN_PACKAGES
from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.inspector import inspector_from_model

IN_STATION = os.environ.get("SCRATCHDET_STATION") == "1"
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="session")
def station(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding ``model.onnx`` and ``reference/results.bbox.json``."""
    given = os.environ.get("SCRATCHDET_STATION_DIR")
    if given:
        return Path(given)
    if not HAS_TORCH:
        pytest.fail("no torch here: set $SCRATCHDET_STATION_DIR to a fixture made in the full "
                    "venv (python -m tests.station.fixture OUT SAMPLE)")
    out = tmp_path_factory.mktemp("station")
    make_fixture(out, sample)
    return out


def test_the_station_venv_has_no_torch() -> None:
    if not IN_STATION:
        pytest.skip("checked in the station venv (make station-test)")
    present = [m for m in TRAIN_PACKAGES if importlib.util.find_spec(m) is not None]
    assert present == [], f"the station install pulled in {present}"


def test_predict_reproduces_the_full_install(station: Path, sample: Path,
                                             tmp_path: Path) -> None:
    out = tmp_path / "pred"
    result = CliRunner().invoke(app, predict_args(station / "model.onnx", sample, out))
    assert result.exit_code == 0, result.output
    got = (out / "results.bbox.json").read_bytes()
    assert got == (station / "reference" / "results.bbox.json").read_bytes()
    rows = (out / "verdicts.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == list(PHOTOS)
    for row in rows:  # the model's own operating threshold (0.3) decides
        _, verdict, max_score, *_ = row.split(",")
        assert verdict == ("fail" if float(max_score) >= 0.3 else "pass")


def test_serve_inspects_with_the_onnx_model(station: Path, sample: Path,
                                            tmp_path: Path) -> None:
    inspector = inspector_from_model(station / "model.onnx")
    assert inspector.model_id.startswith("model.onnx@")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    made = CliRunner().invoke(app, ["token", "create", "line1", "--role", "operator", "--db", db])
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    settings = ServiceSettings(db_url=db, storage_dir=tmp_path / "photos", default_threshold=0.3)
    photo = io.BytesIO()
    with Image.open(sample / "val" / PHOTOS[0]) as im:
        im.reduce(4).save(photo, "JPEG", quality=90)
    with TestClient(create_app(inspector, settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "service did not become ready"
            time.sleep(0.05)
        files = {"photo": ("part.jpg", photo.getvalue(), "image/jpeg")}
        assert client.post("/v1/inspect", files=files).status_code == 401  # no key
        response = client.post("/v1/inspect", files=files,
                               headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] in ("pass", "fail") and body["model_id"] == inspector.model_id
    assert body["num_boxes"] == len(body["boxes"]) and all(s >= 0.3 for s in body["scores"])


def test_serve_stops_at_once_on_a_model_it_cannot_load(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # serve's default history folder: not in the checkout
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a graph")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["serve", str(bad), "--port", "1"])
    assert result.exit_code == 2
    assert "cannot serve" in result.output and "broken.onnx: not a readable ONNX" in result.output
    assert time.monotonic() - started < 20


def test_what_needs_torch_names_the_extra(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # serve's default history folder: not in the checkout
    if HAS_TORCH:
        pytest.skip("torch is installed here; checked in the station venv")
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"x")
    photo = tmp_path / "p.jpg"
    Image.new("RGB", (64, 48)).save(photo)
    runs = {
        "train": ["train", "configs/cpu_fast.yaml"],
        "export": ["export", str(pt), "-o", str(tmp_path / "m.onnx")],
        "predict": ["predict", str(pt), str(photo), "--out", str(tmp_path / "o")],
        "serve": ["serve", "--tiny-random"],
    }
    for name, args in runs.items():
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (name, result.output)
        assert "pip install 'scratchdet[train]'" in result.output, (name, result.output)
