"""Pydantic models of the HTTP API (what /openapi.json documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from scratchdet.service.db import InspectionRow, as_utc


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

    @classmethod
    def from_row(cls, row: InspectionRow) -> Inspection:
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
