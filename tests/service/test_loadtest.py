"""The load script: percentile maths, loopback-only, a small real run, the history check,
and two spawned replicas sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.db import HistoryFilter, InspectionRow, open_history
from scratchdet.service.inspector import Inspector
from scratchdet.service.loadtest import (
    check_integrity,
    check_loopback,
    main,
    memory_kib,
    percentile,
    run_load,
)
from service.helpers import photo_bytes, serve_in_thread


@pytest.mark.parametrize(
    ("q", "expected"), [(0, 1.0), (10, 1.0), (50, 5.0), (90, 9.0), (99, 10.0), (100, 10.0)]
)
def test_nearest_rank_percentile(q: float, expected: float) -> None:
    values = [10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0]
    assert percentile(values, q) == expected


def test_percentile_of_nothing_and_remote_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(SystemExit, match="loopback"):
        check_loopback("http://example.org:8000")
    check_loopback("http://127.0.0.1:8000")


def test_small_load_run(tiny_inspector: Inspector, settings: ServiceSettings,
                        api_keys: dict[str, str]) -> None:
    app = create_app(tiny_inspector, settings.model_copy(update={"max_concurrency": 2}))
    with serve_in_thread(app) as url:
        report = asyncio.run(
            run_load([url], photo_bytes(), "p.jpg", requests=6, concurrency=6,
                     total_timeout_s=60, server_pids=[os.getpid()], api_key=api_keys["operator"])
        )
    assert report.statuses == {"200": 6}
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p90"] <= report.latency_ms["max"]
    assert report.throughput_ok_per_s == pytest.approx(6 / report.wall_s)
    assert report.server_ms_mean["model_ms"] > 0
    (server,) = report.servers
    assert (server.url, server.statuses) == (url, {"200": 6})
    assert server.peak_hwm_mib >= server.rss_before_mib > 0
    assert set(memory_kib(os.getpid())) == {"VmRSS", "VmHWM"}
    assert len(set(report.ok_ids)) == 6 and "ok_ids" not in report.to_json()


def test_integrity_check_finds_lost_and_doubled_photos(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    history = open_history(url)
    for name in ("old", "r1", "r2", "r3"):
        history.add(InspectionRow(
            id=name, created_at=datetime(2026, 1, 1, tzinfo=UTC), filename="p.jpg",
            photo_path=str(folders[0] / f"{name}.jpg"), width=1, height=1, threshold=0.5,
            verdict="pass", num_boxes=0, boxes=[], scores=[], timings={}, model_id="m"))
    history.close()
    for name in ("old", "r1", "r2"):
        (folders[0] / f"{name}.jpg").write_bytes(b"x")
    clean = check_integrity(url, folders, ["r1", "r2"], rows_before=2)
    assert clean.passed and (clean.rows_added, clean.photos_missing) == (2, 0)
    (folders[1] / "r2.jpg").write_bytes(b"x")  # the same photo in two replicas' folders
    (folders[1] / "orphan.jpg").write_bytes(b"x")  # a photo without a row
    found = check_integrity(url, folders, ["r1", "r2", "r3", "r9", "r1"], rows_before=1)
    assert not found.passed
    assert (found.ok_responses, found.rows_added, found.missing_rows, found.duplicate_ids) == (
        5, 3, 1, 1)
    assert (found.photos_missing, found.photos_duplicated, found.stray_files) == (1, 1, 1)


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
def test_two_replicas_share_one_postgresql(tmp_path: Path, db_url: str) -> None:
    """Two ``serve --tiny-random`` processes on one PostgreSQL schema, started together (so
    they migrate it one at a time): 20 requests round-robin, every row and photo once."""
    photo = tmp_path / "p.jpg"
    photo.write_bytes(photo_bytes(640, 480))
    out = tmp_path / "report.json"
    code = main(["--photo", str(photo), "--spawn-tiny", "--replicas", "2", "--db", db_url,
                 "--requests", "20", "--concurrency", "8", "--total-timeout", "240",
                 "--json", str(out)])
    report = json.loads(out.read_text())
    assert code == 0, report
    assert report["statuses"] == {"200": 20}
    assert [s["statuses"] for s in report["servers"]] == [{"200": 10}, {"200": 10}]
    assert len({s["pid"] for s in report["servers"]}) == 2
    assert all(s["peak_hwm_mib"] >= s["rss_before_mib"] > 0 for s in report["servers"])
    integrity = report["integrity"]
    assert integrity["passed"] and integrity["rows_added"] == integrity["ok_responses"] == 20
    history = open_history(db_url)
    assert history.page(HistoryFilter(), 1, 0)[1] == 20
    history.close()
