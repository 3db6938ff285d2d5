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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    create_engine,
    delete,
    event,
    func,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from scratchdet.service.migrations import BASELINE, BASELINE_TABLES

log = logging.getLogger("scratchdet.service")

#: Where Alembic finds the migration scripts (a package resource: works from any folder).
MIGRATIONS = "scratchdet.service:migrations"
#: Key of the PostgreSQL advisory lock that lets one process at a time migrate.
_MIGRATION_LOCK = 0x5C4A7C0DE7
#: Alembic's ``context``/``op`` are process-global: one migration at a time per process.
_MIGRATING = threading.Lock()
Trouble = Literal["busy", "unavailable"]


class Base(DeclarativeBase):
    pass


class InspectionRow(Base):
    __tablename__ = "inspections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    filename: Mapped[str] = mapped_column(String(255))
    photo_path: Mapped[str] = mapped_column(String(1024))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(8), index=True)
    num_boxes: Mapped[int] = mapped_column(Integer)
    boxes: Mapped[list[list[float]]] = mapped_column(JSON)
    scores: Mapped[list[float]] = mapped_column(JSON)
    timings: Mapped[dict[str, float]] = mapped_column(JSON)
    model_id: Mapped[str] = mapped_column(String(255))


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of the key is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class SessionRow(Base):
    """A web sign-in: the SHA-256 of the cookie's token, for the key that signed in."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_name: Mapped[str] = mapped_column(
        String(64), ForeignKey("api_keys.name", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class HistoryFilter:
    """Which rows a history page shows; ``None`` means no condition."""

    verdict: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def to_utc_naive(moment: datetime) -> datetime:
    """Aware -> UTC without tzinfo; naive is taken as UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def as_utc(moment: datetime) -> datetime:
    """A stored naive-UTC time as an aware UTC datetime."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    expected = {table: {c.name for c in Base.metadata.tables[table].columns}
                for table in BASELINE_TABLES}
    for table in sorted(present & set(BASELINE_TABLES)):
        missing = expected[table] - {c["name"] for c in schema.get_columns(table)}
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
        conditions = []
        if where.verdict is not None:
            conditions.append(InspectionRow.verdict == where.verdict)
        if where.since is not None:
            conditions.append(InspectionRow.created_at >= to_utc_naive(where.since))
        if where.until is not None:
            conditions.append(InspectionRow.created_at < to_utc_naive(where.until))
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
            result = session.execute(delete(InspectionRow).where(InspectionRow.id.in_(ids)))
            return int(getattr(result, "rowcount", 0) or 0)

    def close(self) -> None:
        self.engine.dispose()


def open_history(url: str, busy_timeout_s: float = 2.0) -> History:
    """The history at ``url``, its schema migrated to the newest revision first."""
    return History(make_engine(url, busy_timeout_s))

