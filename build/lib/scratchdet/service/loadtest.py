"""A bounded load test of the inspection service, on the loopback interface only.

    python -m scratchdet.service.loadtest --photo PHOTO --spawn-tiny      # starts its own server
    python -m scratchdet.service.loadtest --photo PHOTO --spawn-tiny --replicas 2 --db URL
        (two servers sharing one history database, e.g. PostgreSQL; requests go round-robin)
    python -m scratchdet.service.loadtest --photo PHOTO --url http://127.0.0.1:8000 --server-pid N
        (an operator key from --api-key or $SCRATCHDET_API_KEY; the spawned server runs --no-auth)

Sends ``--requests`` POST /v1/inspect, ``--concurrency`` in flight at a time (each timed
from its own start; one total time limit), and reports latency percentiles, throughput and
each server's peak memory (VmHWM from /proc/PID/status, so Linux only). With
``--spawn-tiny`` it then checks the history: one row per 200 response, none more, and each
of those rows' photo stored exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of a non-empty list."""
    if not values:
        raise ValueError("percentile of an empty list")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


@dataclass
class ServerFigures:
    """One server's share of the requests and its memory (MiB) before, after and at peak."""

    url: str
    pid: int | None
    statuses: dict[str, int]
    rss_before_mib: float | None = None
    rss_after_mib: float | None = None
    peak_hwm_mib: float | None = None


@dataclass
class Integrity:
    """The history after a run: rows and photos against the 200 responses."""

    ok_responses: int
    rows_added: int
    missing_rows: int
    duplicate_ids: int
    photos_missing: int
    photos_duplicated: int
    stray_files: int

    @property
    def passed(self) -> bool:
        return self.rows_added == self.ok_responses and not (
            self.missing_rows or self.duplicate_ids or self.photos_missing
            or self.photos_duplicated or self.stray_files)


@dataclass
class LoadReport:
    urls: list[str]
    requests: int
    concurrency: int
    statuses: dict[str, int]
    wall_s: float
    throughput_ok_per_s: float
    latency_ms: dict[str, float]
    server_ms_mean: dict[str, float] = field(default_factory=dict)
    servers: list[ServerFigures] = field(default_factory=list)
    integrity: Integrity | None = None
    ok_ids: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The report without the inspection ids; the integrity check with its verdict."""
        data = asdict(self)
        data.pop("ok_ids")
        if self.integrity is not None:
            data["integrity"]["passed"] = self.integrity.passed
        return data


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing {url}: the load test only targets loopback ({LOOPBACK})")


async def _one(client: Any, gate: asyncio.Semaphore, url: str, photo: bytes,
               name: str) -> tuple[str, float, dict]:
    """One upload, timed from when it may start (at most ``concurrency`` in flight)."""
    async with gate:
        return await _timed(client, url, photo, name)


async def _timed(client: Any, url: str, photo: bytes, name: str) -> tuple[str, float, dict]:
    started = time.perf_counter()
    try:
        response = await client.post(
            f"{url}/v1/inspect", files={"photo": (name, photo, "image/jpeg")}
        )
        status = str(response.status_code)
        body = response.json() if response.status_code == 200 else {}
    except Exception as error:  # counted and reported, never raised
        status, body = type(error).__name__, {}
    return status, (time.perf_counter() - started) * 1000.0, body


def _memory_mib(pid: int) -> dict[str, float]:
    return {key: value / 1024 for key, value in memory_kib(pid).items()}


def _summary(results: list[tuple[str, float, dict]], wall: float) -> dict[str, Any]:
    """Latency percentiles (all requests, and the 200s), throughput and server-side means."""
    ok = [ms for status, ms, _ in results if status == "200"]
    every = [ms for _, ms, _ in results] or [0.0]
    latency = {"p50": percentile(every, 50), "p90": percentile(every, 90),
               "p99": percentile(every, 99), "max": max(every)}
    if ok:
        latency.update({f"ok_p{q}": percentile(ok, q) for q in (50, 90, 99)})
    stages = ("queue_ms", "decode_ms", "model_ms", "inspect_ms", "total_ms")
    timings = [body.get("timings", {}) for status, _, body in results if status == "200"]
    server = {s: sum(t.get(s, 0.0) for t in timings) / max(1, len(ok)) for s in stages}
    return {"throughput_ok_per_s": len(ok) / wall, "latency_ms": latency,
            "server_ms_mean": server}


async def run_load(
    urls: Sequence[str], photo: bytes, name: str, requests: int, concurrency: int,
    total_timeout_s: float, server_pids: Sequence[int | None] = (), api_key: str | None = None,
) -> LoadReport:
    """Send ``requests`` uploads, ``concurrency`` at a time, round-robin over ``urls``, and
    measure; gives up after ``total_timeout_s``. ``server_pids`` (one per URL) add memory
    figures."""
    import httpx

    for url in urls:
        check_loopback(url)
    pids = list(server_pids) or [None] * len(urls)
    before = [_memory_mib(pid) if pid else {} for pid in pids]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(total_timeout_s),
                                 headers=headers) as client:
        gate = asyncio.Semaphore(concurrency)
        tasks = [asyncio.ensure_future(_one(client, gate, urls[i % len(urls)], photo, name))
                 for i in range(requests)]
        await asyncio.wait(tasks, timeout=total_timeout_s)
        for task in tasks:
            task.cancel()
    wall = time.perf_counter() - started
    results = [t.result() if t.done() and not t.cancelled() else ("unfinished", 0.0, {})
               for t in tasks]
    servers = []
    for index, (url, pid) in enumerate(zip(urls, pids, strict=True)):
        mine = Counter(status for status, _, _ in results[index::len(urls)])
        figures = ServerFigures(url, pid, dict(sorted(mine.items())))
        if pid:
            after = _memory_mib(pid)
            figures.rss_before_mib = before[index]["VmRSS"]
            figures.rss_after_mib, figures.peak_hwm_mib = after["VmRSS"], after["VmHWM"]
        servers.append(figures)
    statuses = Counter(status for status, _, _ in results)
    finished = [r for r in results if r[0] != "unfinished"]
    return LoadReport(
        urls=list(urls), requests=requests, concurrency=concurrency,
        statuses=dict(sorted(statuses.items())), wall_s=wall, servers=servers,
        ok_ids=[body["id"] for status, _, body in results if status == "200"],
        **_summary(finished, wall),
    )


def count_rows(db_url: str) -> int:
    from scratchdet.service.db import HistoryFilter, open_history

    history = open_history(db_url)
    try:
        return history.page(HistoryFilter(), 1, 0)[1]
    finally:
        history.close()


def check_integrity(db_url: str, storage_dirs: Sequence[Path], ok_ids: Sequence[str],
                    rows_before: int) -> Integrity:
    """Compare the history with the 200 responses: a row per response and no extra row; each
    row's photo in exactly one storage folder; no file there that no row names."""
    from scratchdet.service.db import HistoryFilter, open_history

    history = open_history(db_url)
    photos: dict[str, str] = {}
    try:
        while True:
            rows, total = history.page(HistoryFilter(), 500, len(photos))
            photos.update((row.id, Path(row.photo_path).name) for row in rows)
            if not rows or len(photos) >= total:
                break
    finally:
        history.close()
    files = Counter(p.name for d in storage_dirs if d.is_dir() for p in d.iterdir())
    named = set(photos.values())
    mine = [photos[i] for i in set(ok_ids) if i in photos]
    return Integrity(
        ok_responses=len(ok_ids), rows_added=len(photos) - rows_before,
        missing_rows=sum(i not in photos for i in set(ok_ids)),
        duplicate_ids=len(ok_ids) - len(set(ok_ids)),
        photos_missing=sum(files[name] == 0 for name in mine),
        photos_duplicated=sum(files[name] > 1 for name in mine),
        stray_files=sum(count for name, count in files.items() if name not in named),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_tiny_server(db_url: str, storage: Path, log: Path, slots: int,
                      queue_timeout_s: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``scratchdet serve --tiny-random --no-auth`` on a free loopback port (not yet
    ready: ``wait_ready``)."""
    port = _free_port()
    command = [
        sys.executable, "-m", "scratchdet", "serve", "--tiny-random", "--host", "127.0.0.1",
        "--port", str(port), "--db", db_url, "--storage", str(storage),
        "--max-concurrency", str(slots), "--queue-timeout", str(queue_timeout_s), "--no-auth",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{port}"


def wait_ready(server: subprocess.Popen[bytes], url: str, log: Path,
               timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server {url} exited early; see {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server {url} did not become ready within {timeout_s:.0f} s; see {log}")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--photo", type=Path, required=True, help="JPEG photo to upload")
    parser.add_argument("--url", action="append", default=[],
                        help="running service (loopback only; repeat for replicas)")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="its process id, for memory figures (one per --url)")
    parser.add_argument("--api-key", default=os.environ.get("SCRATCHDET_API_KEY"),
                        help="operator key for --url (default: $SCRATCHDET_API_KEY)")
    parser.add_argument("--spawn-tiny", action="store_true",
                        help="start `scratchdet serve --tiny-random` for the test")
    parser.add_argument("--replicas", type=int, default=1, help="spawned servers")
    parser.add_argument("--db", help="spawned servers' shared history (SQLAlchemy URL; "
                        "default: a SQLite file in a temporary folder)")
    parser.add_argument("--shared-storage", action="store_true",
                        help="spawned servers share one photo folder (default: one each)")
    parser.add_argument("--slots", type=int, default=2, help="spawned server's concurrency")
    parser.add_argument("--queue-timeout", type=float, default=30.0,
                        help="spawned server's queue timeout, s")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--total-timeout", type=float, default=600.0, help="whole test, s")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if bool(args.url) == args.spawn_tiny:
        parser.error("give either --url or --spawn-tiny")
    if args.server_pid and len(args.server_pid) != len(args.url):
        parser.error("give one --server-pid per --url")
    if args.replicas < 1 or (args.replicas > 1 and not args.spawn_tiny):
        parser.error("--replicas N (N >= 1) goes with --spawn-tiny")
    return args


def _spawned_run(args: argparse.Namespace, photo: bytes, workdir: Path) -> LoadReport:
    """Start the replicas together (they migrate a new database one at a time), load them,
    stop them, then check the history."""
    db_url = args.db or f"sqlite:///{workdir / 'history.db'}"
    storages = [workdir / ("photos" if args.shared_storage else f"photos-{i}")
                for i in range(args.replicas)]
    servers = [start_tiny_server(db_url, storages[i], workdir / f"server-{i}.log", args.slots,
                                 args.queue_timeout) for i in range(args.replicas)]
    try:
        for i, (server, url) in enumerate(servers):
            wait_ready(server, url, workdir / f"server-{i}.log")
        rows_before = count_rows(db_url)
        report = asyncio.run(run_load(
            [url for _, url in servers], photo, args.photo.name, args.requests,
            args.concurrency, args.total_timeout, [server.pid for server, _ in servers]))
    finally:
        for server, _ in servers:
            server.terminate()
        for server, _ in servers:
            server.wait(timeout=30)
    report.integrity = check_integrity(db_url, sorted(set(storages)), report.ok_ids,
                                       rows_before)
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    photo = args.photo.read_bytes()
    if args.spawn_tiny:
        with tempfile.TemporaryDirectory(prefix="scratchdet-load-") as workdir:
            report = _spawned_run(args, photo, Path(workdir))
    else:
        urls = [url.rstrip("/") for url in args.url]
        report = asyncio.run(run_load(urls, photo, args.photo.name, args.requests,
                                      args.concurrency, args.total_timeout, args.server_pid,
                                      args.api_key))
    text = json.dumps(report.to_json(), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    passed = report.integrity is None or report.integrity.passed
    return 0 if report.statuses.get("200", 0) and passed else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
