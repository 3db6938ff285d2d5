"""Helpers shared by the service tests."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

#: ``make_client(inspector=None, **setting_overrides)`` -> a started TestClient.
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
