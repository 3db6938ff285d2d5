"""Inspection history and API keys through SQLAlchemy 2.x (SQLite by default).

Times are stored as naive UTC and handed out as aware UTC datetimes. A SQLite file runs in
WAL mode (readers are not blocked by a writer) and waits at most ``busy_timeout_s`` for a
lock; the app answers a still-locked database with 503 (``errors.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
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
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


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


def make_engine(url: str, busy_timeout_s: float = 2.0) -> Engine:
    """Create the engine and the tables; SQLite files get their folder created first."""
    kwargs: dict[str, Any] = {}
    sqlite = url.startswith("sqlite")
    database = url.split("///", 1)[1] if sqlite and "///" in url else ""
    if sqlite:
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_s}
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    if sqlite:
        wal = bool(database) and database != ":memory:"
        event.listen(engine, "connect", _sqlite_pragmas(wal))
    Base.metadata.create_all(engine)
    return engine


class History:
    """Adds and reads inspection rows; one short session per call (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, row: InspectionRow) -> None:
        row.created_at = to_utc_naive(row.created_at)
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
    return History(make_engine(url, busy_timeout_s))

