"""The tables of the history database (SQLAlchemy models) and the filter of a history query.

The schema itself is made by the Alembic migrations in ``migrations/`` (``db.migrate``); these
models must say exactly what the newest revision makes (``tests/service/test_migrations.py``
compares them). Times are stored as naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    and_,
    exists,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: What an operator may say about an inspection (``POST /v1/inspections/{id}/decisions``).
DecisionKind = Literal["confirm", "false_alarm", "missed"]
DECISION_KINDS: tuple[DecisionKind, ...] = ("confirm", "false_alarm", "missed")
#: The ``decision`` filter of the history: a kind, ``any`` (reviewed) or ``none`` (not yet).
DecisionFilter = Literal["confirm", "false_alarm", "missed", "any", "none"]
#: Longest part serial / lot, and station / operator name, a history row keeps.
SERIAL_CHARS, NAME_CHARS = 128, 64


class Base(DeclarativeBase):
    pass


class InspectionRow(Base):
    """One inspected photo. ``boxes``/``scores``: the kept boxes (score >= threshold);
    ``below_boxes``/``below_scores``: the boxes under the threshold the predictor still
    reported (for near-misses and re-thresholding); ``part_box``: the part region. Boxes are
    ``[x1, y1, x2, y2]`` in original pixels; rows from before revision 0002 have None there."""

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
    serial: Mapped[str | None] = mapped_column(String(SERIAL_CHARS), index=True, default=None)
    lot: Mapped[str | None] = mapped_column(String(SERIAL_CHARS), index=True, default=None)
    station: Mapped[str | None] = mapped_column(String(NAME_CHARS), default=None)
    operator: Mapped[str | None] = mapped_column(String(NAME_CHARS), default=None)
    part_box: Mapped[list[float] | None] = mapped_column(JSON, default=None)
    below_boxes: Mapped[list[list[float]] | None] = mapped_column(JSON, default=None)
    below_scores: Mapped[list[float] | None] = mapped_column(JSON, default=None)


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


class DecisionRow(Base):
    """An operator's decision on an inspection: ``kind``, the boxes it names (confirmed or
    drawn; none for a false alarm), who (the API key's name) and when. Rows are only added:
    a later confirm/false alarm overrides an earlier one (``service.review``)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("inspections.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    boxes: Mapped[list[list[float]]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime, index=True)


def to_utc_naive(moment: datetime) -> datetime:
    """Aware -> UTC without tzinfo; naive is taken as UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def as_utc(moment: datetime) -> datetime:
    """A stored naive-UTC time as an aware UTC datetime."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class HistoryFilter:
    """Which rows a history query takes; ``None`` means no condition. ``since`` is
    inclusive, ``until`` exclusive; ``decision``: rows with a decision of that kind, ``any``
    decision, or ``none``; the text fields match exactly."""

    verdict: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    decision: DecisionFilter | None = None
    serial: str | None = None
    lot: str | None = None
    station: str | None = None
    operator: str | None = None

    def conditions(self) -> list[Any]:
        """The SQL conditions on ``InspectionRow`` (all must hold)."""
        found: list[Any] = []
        if self.verdict is not None:
            found.append(InspectionRow.verdict == self.verdict)
        if self.since is not None:
            found.append(InspectionRow.created_at >= to_utc_naive(self.since))
        if self.until is not None:
            found.append(InspectionRow.created_at < to_utc_naive(self.until))
        for column, value in ((InspectionRow.serial, self.serial), (InspectionRow.lot, self.lot),
                              (InspectionRow.station, self.station),
                              (InspectionRow.operator, self.operator)):
            if value is not None:
                found.append(column == value)
        if self.decision is not None:
            found.append(self._decided())
        return found

    def _decided(self) -> Any:
        link = DecisionRow.inspection_id == InspectionRow.id
        if self.decision in ("any", "none"):
            any_decision = exists(select(DecisionRow.id).where(link))
            return any_decision if self.decision == "any" else ~any_decision
        return exists(select(DecisionRow.id).where(and_(link, DecisionRow.kind == self.decision)))
