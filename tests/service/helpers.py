"""Helpers shared by the service tests."""

from __future__ import annotations

import io
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

#: ``make_client(inspector=None, role="admin", **setting_overrides)`` -> a started TestClient.
MakeClient = Callable[..., TestClient]

PG_URL_ENV = "SCRATCHDET_PG_URL"
#: Runs a test (or every test of a module, as ``pytestmark``) on SQLite and on PostgreSQL:
#: the ``db_kind`` fixture (conftest.py) decides the ``db_url`` of ``settings``.
BOTH_DATABASES = pytest.mark.parametrize("db_kind", ["sqlite", "postgresql"], indirect=True)


def pg_base_url() -> str:
    """$SCRATCHDET_PG_URL; without it the test is skipped (failed when
    SCRATCHDET_REQUIRE_PG=1, as in CI: scripts/pg_test_server.sh start gives one)."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        why = f"${PG_URL_ENV} is not set (scripts/pg_test_server.sh start prints one)"
        if os.environ.get("SCRATCHDET_REQUIRE_PG") == "1":
            pytest.fail(why + " but SCRATCHDET_REQUIRE_PG=1")
        pytest.skip(why)
    return url


@contextmanager
def fresh_pg_schema() -> Iterator[str]:
    """A new, empty schema in the test server's database; yields a URL whose connections
    use it (``search_path``), and drops it with everything in it afterwards."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    base = make_url(pg_base_url())
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-c search_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def write_lock(db_url: str) -> Iterator[None]:
    """Hold the history's write lock from another connection, as a long transaction would:
    SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL ``LOCK TABLE ... IN SHARE MODE`` on the
    inspections (readers pass, writers wait)."""
    if db_url.startswith("sqlite"):
        locker = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("LOCK TABLE inspections IN SHARE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


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
