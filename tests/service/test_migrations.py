"""Alembic migrations at start-up: a fresh database, one made by ``create_all`` before
migrations (stamped, its rows kept), one of revision 0001 upgraded in place to the operator
review (0002), concurrent start-ups; on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.pool import NullPool

from scratchdet.service.db import (
    Base,
    DecisionRow,
    HistoryFilter,
    InspectionRow,
    alembic_config,
    head_revision,
    make_engine,
    open_history,
)
from scratchdet.service.keys import KeyStore, Principal, open_key_store
from service.helpers import BOTH_DATABASES

pytestmark = BOTH_DATABASES
ALL_TABLES = {"inspections", "api_keys", "web_sessions", "decisions", "alembic_version"}


def legacy_metadata(with_keys: bool = True) -> MetaData:
    """The tables exactly as the service's ``create_all`` made them before migrations
    (frozen here: the models may move on)."""
    meta = MetaData()
    Table("inspections", meta,
          Column("id", String(32), primary_key=True),
          Column("created_at", DateTime, nullable=False, index=True),
          Column("filename", String(255), nullable=False),
          Column("photo_path", String(1024), nullable=False),
          Column("width", Integer, nullable=False), Column("height", Integer, nullable=False),
          Column("threshold", Float, nullable=False),
          Column("verdict", String(8), nullable=False, index=True),
          Column("num_boxes", Integer, nullable=False),
          Column("boxes", JSON, nullable=False), Column("scores", JSON, nullable=False),
          Column("timings", JSON, nullable=False), Column("model_id", String(255), nullable=False))
    if with_keys:
        Table("api_keys", meta,
              Column("name", String(64), primary_key=True),
              Column("role", String(16), nullable=False),
              Column("key_hash", String(64), nullable=False, unique=True),
              Column("created_at", DateTime, nullable=False))
        Table("web_sessions", meta,
              Column("token_hash", String(64), primary_key=True),
              Column("key_name", String(64), ForeignKey("api_keys.name", ondelete="CASCADE"),
                     nullable=False, index=True),
              Column("expires_at", DateTime, nullable=False))
    return meta


def make_legacy(url: str, with_keys: bool = True) -> None:
    """A history as the code before migrations left it: tables, one row, no version table."""
    engine = create_engine(url, poolclass=NullPool)
    meta = legacy_metadata(with_keys)
    meta.create_all(engine)
    with engine.begin() as connection:
        connection.execute(meta.tables["inspections"].insert().values(
            id="old1", created_at=datetime(2026, 11, 20, 9, 30), filename="p.jpg",
            photo_path="/photos/old1.jpg", width=4608, height=3072, threshold=0.5,
            verdict="fail", num_boxes=1, boxes=[[1.0, 2.0, 3.0, 4.0]], scores=[0.75],
            timings={"total_ms": 812.5}, model_id="scratchdet-model/1"))
    engine.dispose()


def schema_of(engine: Engine) -> tuple[set[str], str | None]:
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        return tables, MigrationContext.configure(connection).get_current_revision()


def test_fresh_database_is_migrated_to_the_models(db_url: str) -> None:
    history = open_history(db_url)
    tables, revision = schema_of(history.engine)
    assert tables == ALL_TABLES
    assert revision == head_revision() == "0002"
    with history.engine.connect() as connection:  # the migrations make what the models say
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    history.close()
    again = open_history(db_url)  # at head: nothing to do
    assert schema_of(again.engine)[1] == "0002"
    again.close()


def test_database_from_before_migrations_is_stamped(db_url: str) -> None:
    make_legacy(db_url)
    legacy = KeyStore(create_engine(db_url, poolclass=NullPool))  # keys made the old way
    key = legacy.create("line-1", "operator")
    legacy.close()
    history = open_history(db_url)
    assert schema_of(history.engine)[1] == head_revision()
    row = history.get("old1")
    assert row is not None and row.boxes == [[1.0, 2.0, 3.0, 4.0]]
    assert row.created_at == datetime(2026, 11, 20, 9, 30)
    assert row.timings == {"total_ms": 812.5}
    assert (row.serial, row.part_box, row.below_scores) == (None, None, None)
    history.add(InspectionRow(
        id="new1", created_at=datetime(2026, 11, 27, tzinfo=UTC), filename="q.jpg",
        photo_path="/photos/new1.jpg", width=10, height=10, threshold=0.5, verdict="pass",
        num_boxes=0, boxes=[], scores=[], timings={}, model_id="m"))
    history.close()
    store = open_key_store(db_url)
    principal = store.verify(key)
    assert principal is not None and principal.name == "line-1"
    store.close()


def test_database_from_before_api_keys_gets_them(db_url: str) -> None:
    make_legacy(db_url, with_keys=False)
    store = open_key_store(db_url)
    key = store.create("admin", "admin")
    assert store.verify(key) is not None
    assert schema_of(store.engine) == (ALL_TABLES, head_revision())
    store.close()
    history = open_history(db_url)
    assert history.get("old1") is not None
    history.close()


def test_a_foreign_inspections_table_is_refused(db_url: str) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE inspections (id VARCHAR(8) PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="without the columns boxes, created_at, filename"):
        open_history(db_url)


#: Waits for a common start time, then opens (and so migrates) the history.
START_UP = """
import sys, time
from scratchdet.service.db import head_revision, make_engine
head_revision()  # scripts read beforehand: the start-ups then overlap (without the lock,
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # most runs fail)
make_engine(sys.argv[1], busy_timeout_s=10).dispose()
"""


def test_concurrent_start_ups_migrate_once(db_url: str) -> None:
    """Replicas starting together on one new database: one migrates, the others wait."""
    start_at = str(time.time() + 3)
    processes = [subprocess.Popen([sys.executable, "-c", START_UP, db_url, start_at],
                                  stderr=subprocess.PIPE) for _ in range(3)]
    errors = [p.communicate(timeout=60)[1].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(head_revision(),)]
    engine.dispose()


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert schema_of(engine) == ({"alembic_version"}, None)
    engine.dispose()
    history = open_history(db_url)
    assert schema_of(history.engine)[1] == head_revision()
    history.close()


def test_a_database_from_a_newer_version_is_refused(db_url: str) -> None:
    open_history(db_url).close()
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(RuntimeError, match="revision '0099', which this scratchdet does not"):
        open_history(db_url)


def test_a_revision_0001_history_upgrades_in_place(db_url: str) -> None:
    """The schema as revision 0001 made it (a key, a sign-in, a row): the upgrade to the
    operator review keeps them all, and the old row takes decisions."""
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
    engine.dispose()
    make_legacy(db_url)  # tables exist already: adds the 26 Nov row only
    old_keys = KeyStore(create_engine(db_url, poolclass=NullPool))
    key = old_keys.create("line-1", "operator")
    token, _ = old_keys.open_session(Principal("line-1", "operator"), hours=1)
    old_keys.close()
    history = open_history(db_url)
    assert schema_of(history.engine) == (ALL_TABLES, head_revision())
    with history.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    row = history.get("old1")
    assert row is not None and (row.scores, row.serial, row.below_boxes) == ([0.75], None, None)
    history.add_decision(DecisionRow(inspection_id="old1", kind="confirm", boxes=row.boxes,
                                     decided_by="line-1", decided_at=datetime.now(UTC)))
    assert [d.kind for d in history.decisions(["old1"])["old1"]] == ["confirm"]
    page, total = history.page(HistoryFilter(decision="confirm"), 10, 0)
    assert ([r.id for r in page], total) == (["old1"], 1)
    history.remove(["old1"])  # its decisions go with it
    assert history.decisions(["old1"]) == {"old1": []}
    history.close()
    store = open_key_store(db_url)
    assert store.verify(key) == store.session_principal(token) == Principal("line-1", "operator")
    store.close()
