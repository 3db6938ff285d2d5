"""Operator review routes: decisions on an inspection, the history as CSV, pass rates.

``POST /v1/inspections/{id}/decisions`` changes state: operator role or higher (viewers 403,
no key 401), and, like every write, the ``RequestGuard``'s Host and Origin checks. The reads
are for the viewer role.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from scratchdet.service.csv_export import csv_chunks
from scratchdet.service.errors import ServiceError
from scratchdet.service.filters import history_filter, time_zone
from scratchdet.service.keys import Principal
from scratchdet.service.passrate import Tally, pass_rates
from scratchdet.service.review import box_problem
from scratchdet.service.routes import errors, row_or_404
from scratchdet.service.schemas import Decision, DecisionIn, PassRate, PassRateReport
from scratchdet.service.security import require
from scratchdet.service.state import ServiceState
from scratchdet.service.tables import DecisionRow, HistoryFilter, InspectionRow

review_router = APIRouter()
_VIEWER = Depends(require("viewer"))
_AUTH = (401, 403)


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _checked_boxes(change: DecisionIn, row: InspectionRow) -> list[list[float]]:
    """The boxes a decision names, checked against its kind and the photo's size."""
    boxes = change.boxes
    if change.decision == "confirm" and boxes is None:
        boxes = row.boxes
    boxes = boxes or []
    if change.decision == "false_alarm" and boxes:
        raise ServiceError(422, "bad_decision", "a false alarm names no boxes (it says the "
                           "part has no scratch); send 'missed' to add boxes")
    if change.decision == "missed" and not boxes:
        raise ServiceError(422, "bad_decision", "'missed' needs the boxes drawn around the "
                           "scratches the detector missed (at least one)")
    for i, box in enumerate(boxes):
        problem = box_problem(box, row.width, row.height)
        if problem is not None:
            raise ServiceError(422, "bad_box", f"boxes[{i}]: {problem}")
    return [[round(float(v), 2) for v in box] for box in boxes]


@review_router.post(
    "/v1/inspections/{inspection_id}/decisions", status_code=201, response_model=Decision,
    responses=errors(*_AUTH, 404, 422, 503),
)
def add_decision(
    request: Request, inspection_id: str, change: DecisionIn,
    principal: Principal = Depends(require("operator")),
) -> Decision:
    """Record an operator's decision on an inspection (operator role): ``confirm`` its boxes,
    call it a ``false_alarm``, or add ``missed`` scratches drawn on the photo. Who (the API
    key's name) and when are stored with it."""
    row = row_or_404(request, inspection_id)
    note = change.note.strip() if change.note and change.note.strip() else None
    decision = DecisionRow(inspection_id=row.id, kind=change.decision,
                           boxes=_checked_boxes(change, row), note=note,
                           decided_by=principal.name, decided_at=datetime.now(UTC))
    return Decision.from_row(_state(request).history.add_decision(decision))


@review_router.get(
    "/v1/inspections/{inspection_id}/decisions", response_model=list[Decision],
    responses=errors(*_AUTH, 404), dependencies=[_VIEWER],
)
def list_decisions(request: Request, inspection_id: str) -> list[Decision]:
    """The decisions on an inspection, oldest first."""
    row = row_or_404(request, inspection_id)
    return [Decision.from_row(d) for d in _state(request).history.decisions([row.id])[row.id]]


@review_router.get(
    "/v1/inspections.csv", response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **errors(*_AUTH, 422)},
    dependencies=[_VIEWER],
)
def export_csv(
    request: Request, where: HistoryFilter = Depends(history_filter),
    zone: tzinfo | None = Depends(time_zone),
) -> StreamingResponse:
    """The filtered history as CSV, newest first (the filters of GET /v1/inspections; all
    matching rows, no paging); ``local_time`` in ``tz``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="inspections-{stamp}.csv"'}
    return StreamingResponse(csv_chunks(_state(request).history, where, zone),
                             media_type="text/csv; charset=utf-8", headers=headers)


def _rate(day: object, shift: str | None, tally: Tally) -> PassRate:
    return PassRate(day=day, shift=shift, total=tally.total, passed=tally.passed,
                    pass_rate=tally.rate)


@review_router.get("/v1/pass-rate", response_model=PassRateReport,
                   responses=errors(*_AUTH, 422), dependencies=[_VIEWER])
async def pass_rate(
    request: Request, where: HistoryFilter = Depends(history_filter),
    zone: tzinfo | None = Depends(time_zone),
) -> PassRateReport:
    """Pass rate of the filtered history per local day and per shift (``serve --shifts``;
    a shift counts on the day it started), days oldest first."""
    state = _state(request)
    starts = state.settings.shift_starts

    def tally() -> PassRateReport:
        pairs = ((r.created_at, r.verdict) for rows in state.history.rows(where, False)
                 for r in rows)
        rates = pass_rates(pairs, starts, zone)
        order = {name: i for i, name in enumerate(rates.shifts)}
        return PassRateReport(
            timezone=str(zone) if zone is not None else "server local time",
            shifts=rates.shifts, total=rates.overall.total, passed=rates.overall.passed,
            pass_rate=rates.overall.rate,
            days=[_rate(d, None, t) for d, t in sorted(rates.days.items())],
            by_shift=[_rate(d, s, t) for (d, s), t in
                      sorted(rates.by_shift.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))],
        )

    return await run_in_threadpool(tally)
