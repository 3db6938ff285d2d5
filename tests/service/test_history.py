"""GET /v1/inspections: paging, verdict and date filters, newest first; the SQL layer.

Every test runs on SQLite and on PostgreSQL (``BOTH_DATABASES``; the latter skipped without
$SCRATCHDET_PG_URL).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

from fastapi.testclient import TestClient

from scratchdet.service.db import InspectionRow, open_history
from service.helpers import BOTH_DATABASES, MakeClient, photo_bytes, wait_ready, write_lock

pytestmark = BOTH_DATABASES
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def add_rows(client: TestClient, count: int) -> None:
    """``count`` rows one hour apart from START; every third one passes."""
    history = client.app.state.service.history
    for i in range(count):
        history.add(
            InspectionRow(
                id=f"row{i:03d}", created_at=START + timedelta(hours=i), filename=f"p{i}.jpg",
                photo_path="/nonexistent", width=4608, height=3072, threshold=0.5,
                verdict="pass" if i % 3 == 0 else "fail", num_boxes=0 if i % 3 == 0 else 1,
                boxes=[] if i % 3 == 0 else [[1.0, 2.0, 3.0, 4.0]],
                scores=[] if i % 3 == 0 else [0.9], timings={"total_ms": 1.0}, model_id="m",
            )
        )


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


def test_paging_newest_first(client: TestClient) -> None:
    add_rows(client, 12)
    first = client.get("/v1/inspections", params={"limit": 5}).json()
    assert ids(first) == ["row011", "row010", "row009", "row008", "row007"]
    assert (first["total"], first["limit"], first["offset"]) == (12, 5, 0)
    last = client.get("/v1/inspections", params={"limit": 5, "offset": 10}).json()
    assert ids(last) == ["row001", "row000"]
    beyond = client.get("/v1/inspections", params={"offset": 50}).json()
    assert (beyond["items"], beyond["total"]) == ([], 12)


def test_filters(client: TestClient) -> None:
    add_rows(client, 12)
    passed = client.get("/v1/inspections", params={"verdict": "pass"}).json()
    assert ids(passed) == ["row009", "row006", "row003", "row000"]
    window = {"since": "2026-03-01T10:00:00Z", "until": "2026-03-01T13:00:00Z"}
    ranged = client.get("/v1/inspections", params=window).json()
    assert ids(ranged) == ["row004", "row003", "row002"]  # since inclusive, until exclusive
    other_zone = {"since": "2026-03-01T11:00:00+01:00", "verdict": "fail", "limit": 2}
    both = client.get("/v1/inspections", params=other_zone).json()
    assert (ids(both), both["total"]) == (["row011", "row010"], 7)  # from 10:00 UTC: 2,4,5,7,..
    item = client.get("/v1/inspections/row004").json()
    assert item["created_at"] == "2026-03-01T12:00:00Z"
    assert item["boxes"] == [[1.0, 2.0, 3.0, 4.0]]


def test_bad_history_queries(client: TestClient) -> None:
    cases = {
        "limit=0": "limit",
        "limit=501": "limit",
        "offset=-1": "offset",
        "verdict=maybe": "verdict",
        "since=yesterday": "since",
        "limit=ten": "limit",
    }
    for query, field in cases.items():
        response = client.get(f"/v1/inspections?{query}")
        assert response.status_code == 422, query
        assert response.json()["error"] == "invalid_input"
        assert f"query.{field}" in response.json()["detail"], query
    missing = client.get("/v1/inspections/0123")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


def test_history_persists_across_restarts(db_url: str, db_kind: str, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'h.db'}" if db_kind == "sqlite" else db_url
    history = open_history(url)
    history.add(
        InspectionRow(
            id="a", created_at=datetime(2026, 1, 1, 12, tzinfo=UTC), filename="a.jpg",
            photo_path="x", width=1, height=1, threshold=0.5, verdict="pass", num_boxes=0,
            boxes=[[0.5, 1.25, 3e5, 4.0]], scores=[0.125], timings={"total_ms": 2.5},
            model_id="m",
        )
    )
    history.add(
        InspectionRow(
            id="b", created_at=datetime(2026, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=2))),
            filename="n\x00ul ☃.jpg", photo_path="y", width=1, height=1, threshold=0.5,
            verdict="fail", num_boxes=0, boxes=[], scores=[], timings={}, model_id="m",
        )
    )
    history.close()
    reopened = open_history(url)
    other = reopened.get("b")
    assert other is not None and other.filename == "n\ufffdul ☃.jpg"
    assert other.created_at == datetime(2026, 1, 1, 11, 30)  # stored as naive UTC
    row = reopened.get("a")
    assert row is not None and row.created_at == datetime(2026, 1, 1, 12)
    assert (row.boxes, row.scores, row.timings) == ([[0.5, 1.25, 3e5, 4.0]], [0.125],
                                                    {"total_ms": 2.5})
    reopened.close()


def test_offsets_the_database_cannot_take_are_422(client: TestClient) -> None:
    add_rows(client, 3)
    last = client.get("/v1/inspections", params={"offset": 2**63 - 1}).json()
    assert (last["items"], last["total"]) == ([], 3)
    for offset in (2**63, 10**30):
        response = client.get("/v1/inspections", params={"offset": offset})
        assert (response.status_code, response.json()["error"]) == (422, "invalid_input")
        assert response.json()["detail"] == (
            "query.offset: Input should be less than or equal to 9223372036854775807"
        )


def test_locked_database_is_503_with_retry_after(make_client: MakeClient, settings) -> None:
    """Another writer holds the lock (SQLite's file, PostgreSQL's table): 503 + Retry-After
    within the busy timeout (not a 500 after 5 s); nothing half-recorded; once the lock goes,
    the same request succeeds."""
    client = make_client(db_busy_timeout_s=0.2, retry_after_s=3)
    wait_ready(client)
    add_rows(client, 2)
    files = {"photo": ("p.jpg", photo_bytes(), "image/jpeg")}
    with write_lock(settings.db_url):
        started = time.monotonic()
        busy = client.post("/v1/inspect", files=files)
        assert time.monotonic() - started < 8  # 0.2 s busy timeout; slack for a loaded CI
        assert (busy.status_code, busy.json()["error"]) == (503, "database_busy")
        assert busy.headers["retry-after"] == "3"
        assert "nothing was recorded, retry in 3 s" in busy.json()["detail"]
        # Readers are not blocked by the writer (WAL; a SHARE lock): the history answers.
        assert client.get("/v1/inspections").json()["total"] == 2
        delete = client.delete("/v1/inspections/row000")
        assert (delete.status_code, delete.headers["retry-after"]) == (503, "3")
    assert list(settings.storage_dir.iterdir()) == []  # the refused photo was not kept
    assert client.get("/v1/inspections").json()["total"] == 2  # nothing lost
    again = client.post("/v1/inspect", files=files)
    assert again.status_code == 200, again.text
    assert client.get("/v1/inspections").json()["total"] == 3
