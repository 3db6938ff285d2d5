"""Pydantic models of the HTTP API (what /openapi.json documents)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from scratchdet.service.review import MAX_DECISION_BOXES, ReviewState, review_of
from scratchdet.service.tables import DecisionKind, DecisionRow, InspectionRow, as_utc


class Decision(BaseModel):
    """An operator's decision on an inspection, with who made it (the API key's name) and
    when."""

    id: int
    decision: DecisionKind
    boxes: list[list[float]] = Field(description="confirmed or drawn boxes, [x1, y1, x2, y2]")
    note: str | None = None
    decided_by: str
    decided_at: datetime

    @classmethod
    def from_row(cls, row: DecisionRow) -> Decision:
        kind: DecisionKind = row.kind  # type: ignore[assignment]
        return cls(id=row.id, decision=kind, boxes=row.boxes, note=row.note,
                   decided_by=row.decided_by, decided_at=as_utc(row.decided_at))


class DecisionIn(BaseModel):
    """``POST /v1/inspections/{id}/decisions`` (operator role). ``confirm``: the boxes
    confirmed as scratches (left out: the boxes the inspection kept; ``[]``: a clean part);
    ``false_alarm``: no scratch (no boxes); ``missed``: the boxes drawn around scratches the
    detector missed (at least one)."""

    model_config = {"extra": "forbid"}

    decision: DecisionKind
    boxes: list[list[float]] | None = Field(None, max_length=MAX_DECISION_BOXES)
    note: str | None = Field(None, max_length=500)


class Inspection(BaseModel):
    """One inspected photo. Boxes are ``[x1, y1, x2, y2]`` in the photo's original pixels."""

    id: str
    created_at: datetime
    filename: str
    width: int
    height: int
    threshold: float
    verdict: Literal["pass", "fail"]
    num_boxes: int
    boxes: list[list[float]]
    scores: list[float]
    timings: dict[str, float] = Field(description="milliseconds per stage, and total_ms")
    model_id: str
    overlay_url: str
    photo_url: str
    serial: str | None = None
    lot: str | None = None
    station: str | None = None
    operator: str | None = Field(None, description="as the station typed it")
    part_box: list[float] | None = Field(None, description="the part region, if known")
    below_boxes: list[list[float]] = Field(
        default_factory=list, description="boxes under the threshold (for near-misses and "
        "re-thresholding), highest first, down to the detector's floor")
    below_scores: list[float] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list, description="oldest first")
    review: ReviewState = Field("unreviewed", description="what the decisions make of it")

    @classmethod
    def from_row(cls, row: InspectionRow,
                 decisions: Sequence[DecisionRow] = ()) -> Inspection:
        return cls(
            id=row.id,
            created_at=as_utc(row.created_at),
            filename=row.filename,
            width=row.width,
            height=row.height,
            threshold=row.threshold,
            verdict="fail" if row.verdict == "fail" else "pass",
            num_boxes=row.num_boxes,
            boxes=row.boxes,
            scores=row.scores,
            timings=row.timings,
            model_id=row.model_id,
            overlay_url=f"/v1/inspections/{row.id}/overlay",
            photo_url=f"/v1/inspections/{row.id}/photo",
            serial=row.serial, lot=row.lot, station=row.station, operator=row.operator,
            part_box=row.part_box, below_boxes=row.below_boxes or [],
            below_scores=row.below_scores or [],
            decisions=[Decision.from_row(d) for d in decisions],
            review=review_of(row.boxes, decisions).state,
        )


class InspectionPage(BaseModel):
    items: list[Inspection]
    total: int = Field(description="rows matching the filter, all pages together")
    limit: int
    offset: int


class ErrorBody(BaseModel):
    error: str = Field(description="short machine-readable code, e.g. too_many_pixels")
    detail: str = Field(description="what was wrong, naming the field or file")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "loading", "failed"]
    model_id: str | None = None
    detail: str | None = None


class SessionInfo(BaseModel):
    """Who is signed in, and the thresholds that role may send."""

    name: str
    role: Literal["viewer", "operator", "admin"]
    auth: bool = Field(description="false when the service runs with --no-auth")
    expires_at: datetime | None = None
    threshold_default: float
    threshold_min: float = Field(description="lowest threshold this role may send")
    threshold_max: float = Field(description="highest threshold this role may send")


class ThresholdSetting(BaseModel):
    """The service's default pass/fail threshold and what non-admin keys may send."""

    threshold: float = Field(ge=0, le=1, description="default score threshold of inspections")
    bounds: tuple[float, float] | None = Field(
        None, description="[min, max] a viewer/operator may send (read-only here)")


class ThresholdChange(BaseModel):
    """``PUT /v1/threshold``: the new default (admin role)."""

    model_config = {"extra": "forbid"}

    threshold: float = Field(ge=0, le=1, description="new default score threshold")


class PassRate(BaseModel):
    day: date = Field(description="local day (a shift: the day it started)")
    shift: str | None = Field(None, description="e.g. 06-14; null for a whole day")
    total: int
    passed: int
    pass_rate: float | None


class PassRateReport(BaseModel):
    """Pass rate of the filtered history per local day and per shift."""

    timezone: str
    shifts: list[str]
    total: int
    passed: int
    pass_rate: float | None
    days: list[PassRate]
    by_shift: list[PassRate]
