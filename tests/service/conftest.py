"""Fixtures for the service tests: a tiny random-weight detector, API keys, synthetic photos.

The tiny detector (torchvision Faster R-CNN MobileNetV3, random weights) exercises the API
for real; a trained scratchdet checkpoint plugs in through ``inspector_from_model``. Access
control is on, as in production: ``make_client`` signs its requests with the ``admin`` key
of ``api_keys`` unless told another role (or ``role=None``: no key). The history is a SQLite
file, or, for a test parametrized over ``db_kind`` (``helpers.BOTH_DATABASES``), also a fresh
schema of the PostgreSQL database at $SCRATCHDET_PG_URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from scratchdet.service.app import create_app
from scratchdet.service.config import ServiceSettings
from scratchdet.service.inspector import Inspector, InspectorFactory, tiny_random_inspector
from scratchdet.service.keys import ROLES, open_key_store
from service.helpers import MakeClient, fresh_pg_schema, wait_ready


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder: a command's default ``scratchdet-service/`` history
    and photo folder land there, never in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` unless a test is parametrized over it (``helpers.BOTH_DATABASES``)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """The test's own history database: a SQLite file, or a fresh PostgreSQL schema."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    assert db_kind == "postgresql", db_kind
    with fresh_pg_schema() as url:
        yield url


@pytest.fixture(scope="session")
def tiny_inspector() -> Inspector:
    return tiny_random_inspector(seed=0, max_side=320)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> ServiceSettings:
    return ServiceSettings(
        db_url=db_url,
        storage_dir=tmp_path / "photos",
        max_upload_bytes=8 * 1024 * 1024,
        max_pixels=20_000_000,
        max_concurrency=2,
        queue_timeout_s=5.0,
        request_timeout_s=30.0,
        default_threshold=0.0,
    )


@pytest.fixture
def api_keys(settings: ServiceSettings) -> dict[str, str]:
    """One key per role (named ``test-<role>``) in the test's history database."""
    store = open_key_store(settings.db_url)
    try:
        return {role: store.create(f"test-{role}", role) for role in ROLES}
    finally:
        store.close()


@pytest.fixture
def make_client(
    settings: ServiceSettings, tiny_inspector: Inspector, api_keys: dict[str, str]
) -> Iterator[MakeClient]:
    """``make_client(inspector=..., role="admin", **setting_overrides)`` -> a started
    TestClient whose requests carry that role's key (``role=None``: no key)."""
    clients: list[TestClient] = []

    def make(
        inspector: Inspector | InspectorFactory | None = None, role: str | None = "admin",
        **overrides: object,
    ) -> TestClient:
        app = create_app(inspector or tiny_inspector, settings.model_copy(update=overrides))
        client = TestClient(app)
        if role is not None:
            client.headers["Authorization"] = f"Bearer {api_keys[role]}"
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
