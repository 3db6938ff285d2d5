"""A bounded load test of the inspection service, on the loopback interface only.

    python -m scratchdet.service.loadtest --photo PHOTO --spawn-tiny      # starts its own server
    python -m scratchdet.service.loadtest --photo PHOTO --url http://127.0.0.1:8000 --server-pid N
        (an operator key from --api-key or $SCRATCHDET_API_KEY; the spawned server runs --no-auth)

Sends ``--requests`` POST /v1/inspect at once (``--concurrency`` connections, one total time
limit) and reports latency percentiles, throughput and the server's peak memory (VmHWM from
/proc/PID/status, so Linux only).
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
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
class LoadReport:
    url: str
    requests: int
    concurrency: int
    statuses: dict[str, int]
    wall_s: float
    throughput_ok_per_s: float
    latency_ms: dict[str, float]
    server_ms_mean: dict[str, float] = field(default_factory=dict)
    server_rss_mib: dict[str, float] = field(default_factory=dict)


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing {url}: the load test only targets loopback ({LOOPBACK})")


async def _one(client, url: str, photo: bytes, name: str) -> tuple[str, float, dict]:
    started = time.perf_counter()
    try:
        response = await client.post(
            f"{url}/v1/inspect", files={"photo": (name, photo, "image/jpeg")}
        )
        status = str(response.status_code)
        timings = response.json().get("timings", {}) if response.status_code == 200 else {}
    except Exception as error:  # counted and reported, never raised
        status, timings = type(error).__name__, {}
    return status, (time.perf_counter() - started) * 1000.0, timings


async def run_load(
    url: str, photo: bytes, name: str, requests: int, concurrency: int, total_timeout_s: float,
    server_pid: int | None = None, api_key: str | None = None,
) -> LoadReport:
    """Send ``requests`` uploads at once and measure; gives up after ``total_timeout_s``."""
    import httpx

    check_loopback(url)
    before = memory_kib(server_pid) if server_pid else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(total_timeout_s)
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers) as client:
        tasks = [asyncio.ensure_future(_one(client, url, photo, name)) for _ in range(requests)]
        done, pending = await asyncio.wait(tasks, timeout=total_timeout_s)
        for task in pending:
            task.cancel()
    wall = time.perf_counter() - started
    results = [task.result() for task in done]
    statuses = Counter(status for status, _, _ in results)
    statuses["unfinished"] += len(pending)
    ok = [ms for status, ms, _ in results if status == "200"]
    every = [ms for _, ms, _ in results] or [0.0]
    latency = {"p50": percentile(every, 50), "p90": percentile(every, 90),
               "p99": percentile(every, 99), "max": max(every)}
    if ok:
        latency.update({f"ok_p{q}": percentile(ok, q) for q in (50, 90, 99)})
    stages = ("queue_ms", "decode_ms", "model_ms", "inspect_ms", "total_ms")
    server = {s: sum(t.get(s, 0.0) for _, _, t in results if t) / max(1, len(ok)) for s in stages}
    memory: dict[str, float] = {}
    if server_pid:
        after = memory_kib(server_pid)
        memory = {"rss_before": before["VmRSS"] / 1024, "rss_after": after["VmRSS"] / 1024,
                  "peak_hwm": after["VmHWM"] / 1024}
    return LoadReport(
        url=url, requests=requests, concurrency=concurrency,
        statuses={k: v for k, v in sorted(statuses.items()) if v}, wall_s=wall,
        throughput_ok_per_s=len(ok) / wall, latency_ms=latency, server_ms_mean=server,
        server_rss_mib=memory,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn_tiny_server(workdir: Path, slots: int, queue_timeout_s: float) -> tuple[
    subprocess.Popen[bytes], str
]:
    """Start ``scratchdet serve --tiny-random`` on a free loopback port; wait until ready."""
    import httpx

    port = _free_port()
    command = [
        sys.executable, "-m", "scratchdet", "serve", "--tiny-random", "--host", "127.0.0.1",
        "--port", str(port), "--db", f"sqlite:///{workdir / 'history.db'}",
        "--storage", str(workdir / "photos"), "--max-concurrency", str(slots),
        "--queue-timeout", str(queue_timeout_s), "--no-auth",
    ]
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited early; see {workdir / 'server.log'}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("server did not become ready within 180 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, required=True, help="JPEG photo to upload")
    parser.add_argument("--url", help="running service (loopback only)")
    parser.add_argument("--server-pid", type=int, help="its process id, for memory figures")
    parser.add_argument("--api-key", default=os.environ.get("SCRATCHDET_API_KEY"),
                        help="operator key for --url (default: $SCRATCHDET_API_KEY)")
    parser.add_argument("--spawn-tiny", action="store_true",
                        help="start `scratchdet serve --tiny-random` for the test")
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
    photo = args.photo.read_bytes()
    server = None
    with tempfile.TemporaryDirectory(prefix="scratchdet-load-") as workdir:
        if args.spawn_tiny:
            server, url = spawn_tiny_server(Path(workdir), args.slots, args.queue_timeout)
            pid = server.pid
        else:
            url, pid = args.url.rstrip("/"), args.server_pid
        try:
            report = asyncio.run(run_load(url, photo, args.photo.name, args.requests,
                                          args.concurrency, args.total_timeout, pid,
                                          None if server else args.api_key))
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
    text = json.dumps(asdict(report), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report.statuses.get("200", 0) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
