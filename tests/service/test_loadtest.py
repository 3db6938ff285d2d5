"""The load script: percentile maths, loopback-only, and a small real run."""

from __future__ import annotations

import asyncio
import os

import pytest

from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.inspector import Inspector
from scratchdet.service.loadtest import check_loopback, memory_kib, percentile, run_load
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
            run_load(url, photo_bytes(), "p.jpg", requests=6, concurrency=6,
                     total_timeout_s=60, server_pid=os.getpid(), api_key=api_keys["operator"])
        )
    assert report.statuses == {"200": 6}
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p90"] <= report.latency_ms["max"]
    assert report.throughput_ok_per_s == pytest.approx(6 / report.wall_s)
    assert report.server_ms_mean["model_ms"] > 0
    assert report.server_rss_mib["peak_hwm"] >= report.server_rss_mib["rss_before"] > 0
    assert set(memory_kib(os.getpid())) == {"VmRSS", "VmHWM"}
