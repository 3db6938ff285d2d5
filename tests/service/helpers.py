"""Helpers shared by the service tests."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

#: ``make_client(inspector=None, role="admin", **setting_overrides)`` -> a started TestClient.
MakeClient = Callable[..., TestClient]


def wait_ready(client: TestClient, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "service did not become ready"
        time.sleep(0.02)


def photo_bytes(width: int = 480, height: int = 320, fmt: str = "JPEG", seed: int = 0) -> bytes:
    """A noisy synthetic photo with a bright diagonal stroke, encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(90, 140, size=(height, width, 3), dtype=np.uint8)
    for i in range(min(width, height) // 2):
        pixels[height // 4 + i, width // 4 + i] = 250
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yield its base URL."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
