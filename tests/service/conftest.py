"""Fixtures for the service tests: a tiny random-weight detector and synthetic photos.

The tiny detector (torchvision Faster R-CNN MobileNetV3, random weights) exercises the API
for real; a trained scratchdet checkpoint plugs in through ``inspector_from_model``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.inspector import Inspector, InspectorFactory, tiny_random_inspector
from service.helpers import MakeClient, wait_ready


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
