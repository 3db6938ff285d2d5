"""Which database errors are a 503 (busy or unreachable: retry later) and which a 500 (a bug),
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool

from scratchdet.service.db import History, database_trouble, make_engine
from service.helpers import MakeClient, wait_ready, write_lock

#: A PostgreSQL nobody listens on (a socket folder that does not exist).
DEAD_PG = "postgresql+psycopg://postgres@/scratchdet?host=/nonexistent-socket-dir&port=1"
ONLY_PG = pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)


def failure(engine_url: str, sql: str, **connect_args: object) -> DBAPIError:
    engine = create_engine(engine_url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
    except DBAPIError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError(f"{sql!r} did not fail on {engine_url}")


def test_unreachable_postgresql_is_unavailable() -> None:
    with pytest.raises(OperationalError) as caught:
        make_engine(DEAD_PG, busy_timeout_s=0.5)
    assert database_trouble(caught.value) == "unavailable"


def test_sqlite_errors(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    make_engine(url).dispose()
    assert database_trouble(failure(url, "SELECT * FROM no_such_table")) is None
    assert database_trouble(failure(url, "SELEKT 1")) is None
    cannot_open = failure(f"sqlite:///{tmp_path / 'missing' / 'h.db'}", "SELECT 1")
    assert database_trouble(cannot_open) == "unavailable"
    with write_lock(url):
        locked = failure(url, "DELETE FROM inspections", timeout=0.05)
    assert "locked" in str(locked) and database_trouble(locked) == "busy"
    assert database_trouble(PoolTimeout("QueuePool limit reached")) == "busy"
    assert database_trouble(ValueError("not a database error")) is None


@ONLY_PG
def test_postgresql_errors(db_url: str) -> None:
    make_engine(db_url).dispose()
    assert database_trouble(failure(db_url, "SELECT * FROM no_such_table")) is None
    assert database_trouble(failure(db_url, "SELEKT 1")) is None
    assert database_trouble(failure(db_url, "SELECT 1 / 0")) is None
    with write_lock(db_url):
        timed_out = failure(db_url, "SET LOCAL lock_timeout = 100; DELETE FROM inspections")
    assert "lock timeout" in str(timed_out) and database_trouble(timed_out) == "busy"
    cancelled = failure(db_url, "SET LOCAL statement_timeout = 50; SELECT pg_sleep(5)")
    assert database_trouble(cancelled) == "busy"


def test_unreachable_database_mid_request_is_503(make_client: MakeClient) -> None:
    client = make_client(retry_after_s=4)
    wait_ready(client)
    client.app.state.service.history = History(create_engine(DEAD_PG, poolclass=NullPool))
    response = client.get("/v1/inspections")
    assert (response.status_code, response.json()["error"]) == (503, "database_unavailable")
    assert response.headers["retry-after"] == "4"
    assert response.json()["detail"] == (
        "the history database is unavailable; nothing was recorded, retry in 4 s")


def test_a_broken_schema_is_a_500_not_a_503(make_client: MakeClient, settings) -> None:
    client = make_client()
    wait_ready(client)
    with client.app.state.service.history.engine.begin() as connection:
        connection.execute(text("DROP TABLE inspections"))
    response = client.get("/v1/inspections")
    assert (response.status_code, response.json()["error"]) == (500, "internal")
    assert "retry-after" not in response.headers
