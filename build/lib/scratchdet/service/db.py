"""Inspection history and API keys through SQLAlchemy 2.x: SQLite (default) or PostgreSQL.

Times are stored as naive UTC and handed out as aware UTC datetimes. The schema is made and
changed by the Alembic migrations in ``migrations/``, run by ``make_engine`` (so by
``open_history``, ``open_key_store`` and the app's start-up); a database made by
``create_all`` before migrations is recognised and stamped. A SQLite file runs in WAL mode
(readers are not blocked by a writer) and waits at most ``busy_timeout_s`` for a lock; on
PostgreSQL the same time is the ``lock_timeout`` (and, rounded up to whole seconds, at least
2, the connect timeout). ``database_trouble`` tells which errors are a busy or unreachable
database, which the app answers with 503 (``errors.py``).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    inspect,
    make_url,
    select,
    text,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import sessionmaker

from scratchdet.service.migrations import BASELINE, BASELINE_COLUMNS, BASELINE_TABLES
from scratchdet.service.tables import (
    ApiKeyRow,
    Base,
    DecisionRow,
    HistoryFilter,
    InspectionRow,
    SessionRow,
    as_utc,
    to_utc_naive,
)

#: The models live in ``tables``; importing them from here keeps working.
__all__ = ["ApiKeyRow", "Base", "DecisionRow", "History", "HistoryFilter", "InspectionRow",
           "SessionRow", "as_utc", "make_engine", "open_history", "to_utc_naive"]

log = logging.getLogger("scratchdet.service")

#: Where Alembic finds the migration scripts (a package resource: works from any folder).
MIGRATIONS = "scratchdet.service:migrations"
#: Key of the PostgreSQL advisory lock that lets one process at a time migrate.
_MIGRATION_LOCK = 0x5C4A7C0DE7
#: Alembic's ``context``/``op`` are process-global: one migration at a time per process.
_MIGRATING = threading.Lock()
Trouble = Literal["busy", "unavailable"]


def _sqlite_pragmas(wal: bool) -> Any:
    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _postgres_args(url: str, busy_timeout_s: float) -> dict[str, Any]:
    """``lock_timeout`` (added to the URL's own ``options``) and a connect timeout."""
    query = make_url(url).query
    own = query.get("options", "")
    own = " ".join(own) if isinstance(own, tuple) else own
    lock_ms = max(1, round(busy_timeout_s * 1000))  # 0 would mean "wait for ever"
    args: dict[str, Any] = {"options": f"{own} -c lock_timeout={lock_ms}".strip()}
    if "connect_timeout" not in query:
        args["connect_timeout"] = max(2, math.ceil(busy_timeout_s))
    return args


def make_engine(url: str, busy_timeout_s: float = 2.0) -> Engine:
    """Create the engine and migrate the schema to the newest revision; a SQLite file gets
    its folder created first."""
    kwargs: dict[str, Any] = {}
    backend = make_url(url).get_backend_name()
    database = url.split("///", 1)[1] if backend == "sqlite" and "///" in url else ""
    if backend == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_s}
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    elif backend == "postgresql":
        kwargs["connect_args"] = _postgres_args(url, busy_timeout_s)
        kwargs["pool_pre_ping"] = True  # a restarted server costs no request a 503
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        wal = bool(database) and database != ":memory:"
        event.listen(engine, "connect", _sqlite_pragmas(wal))
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code: the scripts, and the connection to run them on."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = Base.metadata
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision of the migration scripts."""
    head = _scripts().get_current_head()
    assert head is not None, "no migration scripts"
    return head


def _check_known(connection: Connection, current: str | None) -> None:
    """Refuse a database migrated by a newer scratchdet (a revision we have no script of)."""
    if current is not None and current not in {s.revision for s in _scripts().walk_revisions()}:
        raise RuntimeError(
            f"the history database {connection.engine.url!r} is at schema revision "
            f"{current!r}, which this scratchdet does not know (newest here: "
            f"{head_revision()!r}): upgrade scratchdet, or use another database")


def _stamp_unversioned(connection: Connection, config: Config) -> None:
    """A history made by ``create_all`` before migrations: check it, then stamp it."""
    schema = inspect(connection)
    present = set(schema.get_table_names())
    for table in sorted(present & set(BASELINE_TABLES)):
        missing = BASELINE_COLUMNS[table] - {c["name"] for c in schema.get_columns(table)}
        if missing:
            raise RuntimeError(
                f"the database {connection.engine.url!r} has a table {table!r} without the "
                f"columns {', '.join(sorted(missing))}: it is not a scratchdet history")
    if present >= set(BASELINE_TABLES):
        log.info("history database made before migrations: stamped revision %s", BASELINE)
        command.stamp(config, BASELINE)
    else:  # from before API keys: revision 0001 adds the missing tables
        log.info("history database made before migrations: upgrading from its tables")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision (one process at a time); returns it."""
    head = head_revision()
    with engine.connect() as connection:  # the usual case: nothing to do, no write lock
        if _current(connection) == head:
            return head
    with _MIGRATING, engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _MIGRATION_LOCK})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # DDL and stamp in one write lock
        current = _current(connection)
        if current == head:  # another process migrated it meanwhile
            return head
        _check_known(connection, current)
        config = alembic_config(connection)
        present = set(inspect(connection).get_table_names())
        if "alembic_version" not in present and "inspections" in present:
            _stamp_unversioned(connection, config)
        command.upgrade(config, "head")
        log.info("history database at revision %s", head)
        return head


def write_revision(url: str, message: str) -> None:
    """Draft a migration in ``migrations/versions`` from the difference between the models
    and the database at ``url`` (at the current head): review it before committing."""
    engine = create_engine(url)
    with engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)
    engine.dispose()


_PG_BUSY = {"55P03", "40001", "40P01", "57014"}  # lock timeout, serialization, deadlock, cancel
_PG_DOWN = ("08", "53", "57P", "58")  # connection, resources, shutdown, system error
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_SQLITE_DOWN = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_READONLY",
                "SQLITE_PROTOCOL")


def database_trouble(error: BaseException) -> Trouble | None:
    """``busy`` (locked, lock timeout, pool exhausted) or ``unavailable`` (unreachable, shut
    down, out of room) when retrying later may succeed; None for anything else (a missing
    table, bad SQL, a constraint: a bug, not a 503)."""
    if isinstance(error, sa_exc.TimeoutError):
        return "busy"
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    if error.connection_invalidated:
        return "unavailable"
    if not isinstance(error, sa_exc.OperationalError):
        return None
    state = getattr(error.orig, "sqlstate", None)
    name = getattr(error.orig, "sqlite_errorname", None)
    if state is not None:
        return "busy" if state in _PG_BUSY else (
            "unavailable" if state.startswith(_PG_DOWN) else None)
    if name is not None:
        return "busy" if name.startswith(_SQLITE_BUSY) else (
            "unavailable" if name.startswith(_SQLITE_DOWN) else None)
    if error.orig is not None and type(error.orig).__module__.startswith("psycopg"):
        return "unavailable"  # psycopg's own errors carry no SQLSTATE: the connection failed
    words = str(error.orig or error).lower()
    return "busy" if any(w in words for w in ("locked", "busy", "lock timeout")) else (
        "unavailable")


class History:
    """Adds and reads inspection rows; one short session per call (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, row: InspectionRow) -> None:
        row.created_at = to_utc_naive(row.created_at)
        row.filename = row.filename.replace("\x00", "\ufffd")  # PostgreSQL text has no NUL
        with self._sessions.begin() as session:
            session.add(row)

    def get(self, inspection_id: str) -> InspectionRow | None:
        with self._sessions() as session:
            return session.get(InspectionRow, inspection_id)

    def page(
        self, where: HistoryFilter, limit: int, offset: int
    ) -> tuple[list[InspectionRow], int]:
        """Newest first: ``limit`` rows from ``offset``, and how many rows match in all."""
        conditions = where.conditions()
        query = (
            select(InspectionRow)
            .where(*conditions)
            .order_by(InspectionRow.created_at.desc(), InspectionRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(InspectionRow).where(*conditions)
        with self._sessions() as session:
            return list(session.scalars(query)), int(session.scalar(count) or 0)

    def oldest(self, keep_days: float | None, max_rows: int | None, now: datetime,
               batch: int = 500) -> list[tuple[str, str]]:
        """Up to ``batch`` ``(id, photo_path)``, oldest first, of the rows past retention:
        created more than ``keep_days`` before ``now``, or beyond the newest ``max_rows``."""
        found: dict[str, str] = {}
        order = (InspectionRow.created_at.asc(), InspectionRow.id.asc())
        with self._sessions() as session:
            if keep_days is not None:
                cutoff = to_utc_naive(now) - timedelta(days=keep_days)
                query = (select(InspectionRow.id, InspectionRow.photo_path)
                         .where(InspectionRow.created_at < cutoff).order_by(*order).limit(batch))
                found.update((row[0], row[1]) for row in session.execute(query))
            if max_rows is not None and len(found) < batch:
                total = int(session.scalar(select(func.count()).select_from(InspectionRow)) or 0)
                extra = min(total - max_rows, batch)
                if extra > 0:
                    query = (select(InspectionRow.id, InspectionRow.photo_path)
                             .order_by(*order).limit(extra))
                    found.update((row[0], row[1]) for row in session.execute(query))
        return list(found.items())[:batch]

    def remove(self, ids: list[str]) -> int:
        """Delete these rows in one transaction; how many went."""
        if not ids:
            return 0
        with self._sessions.begin() as session:
            session.execute(delete(DecisionRow).where(DecisionRow.inspection_id.in_(ids)))
            result = session.execute(delete(InspectionRow).where(InspectionRow.id.in_(ids)))
            return int(getattr(result, "rowcount", 0) or 0)

    def rows(self, where: HistoryFilter, newest_first: bool = True,
             batch: int = 500) -> Iterator[list[InspectionRow]]:
        """Every matching row, in batches of at most ``batch`` (keyset paging: each batch is
        its own short read, so a long export holds no transaction open)."""
        order = (InspectionRow.created_at, InspectionRow.id)
        after: tuple[datetime, str] | None = None
        while True:
            query = select(InspectionRow).where(*where.conditions())
            if after is not None:
                key = tuple_(*order)
                query = query.where(key < after if newest_first else key > after)
            query = query.order_by(*(c.desc() if newest_first else c.asc() for c in order))
            with self._sessions() as session:
                found = list(session.scalars(query.limit(batch)))
            if not found:
                return
            yield found
            after = (found[-1].created_at, found[-1].id)

    def add_decision(self, row: DecisionRow) -> DecisionRow:
        """Record an operator's decision (its inspection must exist)."""
        row.decided_at = to_utc_naive(row.decided_at)
        with self._sessions.begin() as session:
            session.add(row)
        return row

    def decisions(self, inspection_ids: list[str]) -> dict[str, list[DecisionRow]]:
        """The decisions of these inspections, oldest first, by inspection id."""
        found: dict[str, list[DecisionRow]] = {i: [] for i in inspection_ids}
        if not inspection_ids:
            return found
        query = (select(DecisionRow).where(DecisionRow.inspection_id.in_(inspection_ids))
                 .order_by(DecisionRow.decided_at.asc(), DecisionRow.id.asc()))
        with self._sessions() as session:
            for row in session.scalars(query):
                found[row.inspection_id].append(row)
        return found

    def close(self) -> None:
        self.engine.dispose()


def open_history(url: str, busy_timeout_s: float = 2.0) -> History:
    """The history at ``url``, its schema migrated to the newest revision first."""
    return History(make_engine(url, busy_timeout_s))

