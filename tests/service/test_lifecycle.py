"""Readiness while the model loads, the concurrency gate (503), timeouts (504), responsiveness."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from scratchdet.service.errors import ServiceError
from scratchdet.service.inspector import InspectionResult, Inspector
from scratchdet.service.limits import InspectionGate
from service.helpers import MakeClient, photo_bytes, wait_ready


class BlockingInspector:
    """Waits for ``release`` before answering; counts how many run at once."""

    model_id = "blocking-test-double"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def inspect(self, image: Image.Image | np.ndarray, threshold: float) -> InspectionResult:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.release()
        self.release.wait(timeout=20)
        with self._lock:
            self.running -= 1
        return InspectionResult([], [], "pass", self.model_id, {})


def post_photo(client: TestClient):
    return client.post("/v1/inspect", files={"photo": ("p.jpg", photo_bytes(), "image/jpeg")})


def test_readyz_is_503_until_the_model_is_loaded(
    make_client: MakeClient, tiny_inspector: Inspector
) -> None:
    loaded = threading.Event()

    def slow_factory() -> Inspector:
        loaded.wait(timeout=20)
        return tiny_inspector

    client = make_client(slow_factory)
    assert client.get("/healthz").status_code == 200
    loading = client.get("/readyz")
    assert (loading.status_code, loading.json()["status"]) == (503, "loading")
    refused = post_photo(client)
    assert (refused.status_code, refused.json()["error"]) == (503, "not_ready")
    assert "still loading" in refused.json()["detail"]
    loaded.set()
    wait_ready(client)
    ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "model_id": tiny_inspector.model_id, "detail": None}
    assert post_photo(client).status_code == 200


def test_readyz_reports_a_failed_load(make_client: MakeClient) -> None:
    def broken_factory() -> Inspector:
        raise FileNotFoundError("checkpoint best.ckpt not found")

    client = make_client(broken_factory)
    for _ in range(500):
        body = client.get("/readyz").json()
        if body["status"] != "loading":
            break
        time.sleep(0.01)
    assert body["status"] == "failed"
    assert body["detail"] == "FileNotFoundError: checkpoint best.ckpt not found"
    refused = post_photo(client)
    assert refused.status_code == 503 and "best.ckpt" in refused.json()["detail"]


def test_busy_service_answers_503_then_serves_again(make_client: MakeClient) -> None:
    blocking = BlockingInspector()
    client = make_client(blocking, max_concurrency=1, queue_timeout_s=0.3)
    wait_ready(client)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post_photo, client)
        assert blocking.started.acquire(timeout=10)
        assert client.get("/healthz").status_code == 200  # the event loop stays free
        busy = post_photo(client)
        assert (busy.status_code, busy.json()["error"]) == (503, "busy")
        assert "1 inspection slots stayed busy for 0.3 s" in busy.json()["detail"]
        blocking.release.set()
        assert first.result(timeout=20).status_code == 200
    assert post_photo(client).status_code == 200
    assert blocking.peak == 1


def test_slow_inspection_answers_504(make_client: MakeClient) -> None:
    blocking = BlockingInspector()
    client = make_client(blocking, request_timeout_s=0.2)
    wait_ready(client)
    timed_out = post_photo(client)
    assert (timed_out.status_code, timed_out.json()["error"]) == (504, "timeout")
    assert "longer than 0.2 s" in timed_out.json()["detail"]
    blocking.release.set()
    assert client.get("/v1/inspections").json()["total"] == 0  # nothing half-recorded


def test_timed_out_inspection_keeps_its_slot_until_its_thread_ends(
    make_client: MakeClient,
) -> None:
    """A 504 does not free the slot: the abandoned thread still counts against the limit, so
    timed-out work can never pile up beyond ``max_concurrency`` threads."""
    blocking = BlockingInspector()
    client = make_client(blocking, max_concurrency=1, request_timeout_s=0.2, queue_timeout_s=0.3)
    wait_ready(client)
    gate = client.app.state.service.gate
    assert post_photo(client).status_code == 504
    assert (gate.busy, gate.abandoned, blocking.running) == (1, 1, 1)  # still running
    busy = post_photo(client)
    assert (busy.status_code, busy.json()["error"]) == (503, "busy")
    assert blocking.peak == 1  # the second request never started a thread
    blocking.release.set()
    deadline = time.monotonic() + 10
    while gate.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (gate.busy, gate.abandoned, blocking.running) == (0, 0, 0)
    assert post_photo(client).status_code == 200
    assert client.get("/v1/inspections").json()["total"] == 1  # the abandoned one left no row


def test_gate_bounds_concurrency_and_frees_slots_only_when_work_ends() -> None:
    async def scenario() -> tuple[list[object], float]:
        gate = InspectionGate(slots=2, queue_timeout_s=0.2, request_timeout_s=0.3)
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(gate.run(time.sleep, 0.5) for _ in range(3)), return_exceptions=True
        )
        # Both slots still held by the abandoned sleeps: a new call waits, then runs.
        gate.queue_timeout_s = 10.0
        result, queue_ms = await gate.run(lambda: "done")
        gate.close()
        return [*outcomes, result, queue_ms], time.perf_counter() - started

    outcomes, elapsed = asyncio.run(scenario())
    codes = sorted(o.status for o in outcomes[:3] if isinstance(o, ServiceError))
    assert codes == [503, 504, 504]
    assert outcomes[3] == "done"
    assert outcomes[4] >= 100.0  # it queued until a 0.5-s sleep really ended
    assert elapsed < 5


def test_gate_passes_errors_through() -> None:
    def refuse() -> None:
        raise ServiceError(422, "corrupt_image", "bad")

    async def scenario() -> None:
        gate = InspectionGate(slots=1, queue_timeout_s=1, request_timeout_s=1)
        with pytest.raises(ServiceError, match="bad"):
            await gate.run(refuse)
        assert (await gate.run(lambda: 7))[0] == 7  # the slot came back
        gate.close()

    asyncio.run(scenario())
