"""Retention: the oldest inspections go, rows and photos together (serve and history prune).

Every test runs on SQLite and on PostgreSQL (``BOTH_DATABASES``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.db import History, HistoryFilter, InspectionRow, open_history
from scratchdet.service.retention import prune
from service.helpers import BOTH_DATABASES, MakeClient, photo_bytes, wait_ready

pytestmark = BOTH_DATABASES
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def add_aged(history: History, storage: Path, ages_days: list[float]) -> list[str]:
    """One row + one photo file per age (days before NOW); the ids, oldest last."""
    storage.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, age in enumerate(ages_days):
        inspection_id = f"id{i:02d}"
        photo = storage / f"{inspection_id}.jpg"
        photo.write_bytes(b"x" * 100)
        history.add(InspectionRow(
            id=inspection_id, created_at=NOW - timedelta(days=age), filename="p.jpg",
            photo_path=f"elsewhere/{photo.name}", width=1, height=1, threshold=0.5,
            verdict="pass", num_boxes=0, boxes=[], scores=[], timings={}, model_id="m",
        ))
        ids.append(inspection_id)
    return ids


def remaining(history: History, storage: Path) -> tuple[list[str], list[str]]:
    """The ids of the rows left, and of the photo files left."""
    rows, _ = history.page(HistoryFilter(), limit=1000, offset=0)
    return sorted(r.id for r in rows), sorted(p.stem for p in storage.iterdir())


def test_prune_by_age_and_by_count(tmp_path: Path, db_url: str) -> None:
    history = open_history(db_url)
    storage = tmp_path / "photos"
    add_aged(history, storage, [0.5, 40, 10, 31, 2])  # id00..id04
    outside = tmp_path / "keep.jpg"
    outside.write_bytes(b"mine")
    assert prune(history, storage, now=NOW).rows == 0  # no rule, nothing goes
    by_age = prune(history, storage, keep_days=30, now=NOW)
    assert (by_age.rows, by_age.photos, by_age.bytes) == (2, 2, 200)
    assert remaining(history, storage) == (["id00", "id02", "id04"],) * 2
    by_count = prune(history, storage, max_photos=2, now=NOW)
    assert (by_count.rows, by_count.photos) == (1, 1)
    assert remaining(history, storage) == (["id00", "id04"],) * 2  # id02 was the oldest
    both = prune(history, storage, keep_days=1, max_photos=5, now=NOW)
    assert both.rows == 1 and remaining(history, storage) == (["id00"],) * 2
    assert outside.read_bytes() == b"mine"
    history.close()


def test_prune_in_batches_and_with_missing_photos(tmp_path: Path, db_url: str) -> None:
    history = open_history(db_url)
    storage = tmp_path / "photos"
    add_aged(history, storage, [float(d) for d in range(1, 13)])
    (storage / "id11.jpg").unlink()  # its photo was lost already: the row still goes
    rows = history.oldest(None, 2, NOW, batch=4)
    assert [i for i, _ in rows] == ["id11", "id10", "id09", "id08"]
    pruned = prune(history, storage, max_photos=2, now=NOW)
    assert (pruned.rows, pruned.photos) == (10, 9)
    assert remaining(history, storage) == (["id00", "id01"],) * 2
    history.close()


def test_serve_prunes_after_inserts(make_client: MakeClient, settings: ServiceSettings) -> None:
    client = make_client(max_photos=2)
    wait_ready(client)
    ids = [client.post("/v1/inspect", files={"photo": ("p.jpg", photo_bytes(seed=i))}).json()["id"]
           for i in range(3)]
    page = client.get("/v1/inspections").json()
    assert [item["id"] for item in page["items"]] == ids[:0:-1]  # newest two, the first gone
    assert sorted(p.stem for p in settings.storage_dir.iterdir()) == sorted(ids[1:])


def test_serve_prunes_at_start(make_client: MakeClient, settings: ServiceSettings) -> None:
    history = open_history(settings.db_url)
    add_aged(history, settings.storage_dir, [400, 1])  # NOW is 2026: id01 may be old too
    history.close()
    client = make_client(keep_days=36500)  # 100 years: keeps both
    wait_ready(client)
    assert client.get("/v1/inspections").json()["total"] == 2
    client.__exit__(None, None, None)
    age_now = (datetime.now(UTC) - (NOW - timedelta(days=400))).days
    client = make_client(keep_days=age_now - 1)  # id00 is older than this, id01 is not
    wait_ready(client)
    assert [i["id"] for i in client.get("/v1/inspections").json()["items"]] == ["id01"]
    assert [p.stem for p in settings.storage_dir.iterdir()] == ["id01"]


def test_history_prune_command(tmp_path: Path, db_url: str) -> None:
    db = db_url
    storage = tmp_path / "photos"
    history = open_history(db)
    add_aged(history, storage, [3, 2, 1])
    history.close()
    runner = CliRunner()
    res = runner.invoke(app, ["history", "prune", "--db", db, "--storage", str(storage),
                              "--max-photos", "1"])
    assert res.exit_code == 0, res.output
    assert "removed 2 inspections and 2 photos" in res.output
    assert sorted(p.stem for p in storage.iterdir()) == ["id02"]
    nothing = runner.invoke(app, ["history", "prune", "--db", db, "--storage", str(storage)])
    assert nothing.exit_code == 2 and "--keep-days, --max-photos or both" in nothing.output
    no_dir = runner.invoke(app, ["history", "prune", "--db", db, "--storage",
                                 str(tmp_path / "nope"), "--keep-days", "1"])
    assert no_dir.exit_code == 2 and "does not exist" in no_dir.output
