"""Fixtures for the service tests: a tiny random-weight detector and synthetic photos.

The tiny detector (torchvision Faster R-CNN MobileNetV3, random weights) exercises the API
for real; a trained scratchdet checkpoint plugs in through ``inspector_from_checkpoint``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.inspector import Inspector, InspectorFactory, tiny_random_inspector


@pytest.fixture(scope="session")
def tiny_inspector() -> Inspector:
    return tiny_random_inspector(seed=0, max_side=320)


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        db_url=f"sqlite:///{tmp_path / 'history.db'}",
        storage_dir=tmp_path / "photos",
        max_upload_bytes=8 * 1024 * 1024,
        max_pixels=20_000_000,
        max_concurrency=2,
        queue_timeout_s=5.0,
        request_timeout_s=30.0,
        default_threshold=0.0,
    )


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(
    settings: ServiceSettings, tiny_inspector: Inspector
) -> Iterator[MakeClient]:
    """``make_client(inspector=..., **setting_overrides)`` -> a started TestClient."""
    clients: list[TestClient] = []

    def make(
        inspector: Inspector | InspectorFactory | None = None, **overrides: object
    ) -> TestClient:
        app = create_app(inspector or tiny_inspector, settings.model_copy(update=overrides))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    test_client = make_client()
    wait_ready(test_client)
    return test_client


def wait_ready(client: TestClient, timeout_s: float = 30.0) -> None:
    import time

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
