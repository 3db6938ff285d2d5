"""Inspection history through SQLAlchemy 2.x (SQLite by default; any SQLAlchemy URL works).

Times are stored as naive UTC and handed out as aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Float, Integer, String, create_engine, func, select
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


def make_engine(url: str) -> Engine:
    """Create the engine and the table; SQLite files get their folder created first."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False}
        database = url.split("///", 1)[1] if "///" in url else ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
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

    def close(self) -> None:
        self.engine.dispose()


def open_history(url: str) -> History:
    return History(make_engine(url))

