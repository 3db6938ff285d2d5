"""HTTP routes: thin; photo work runs in the inspection gate's threads.

Roles (``security.require``): viewer reads the history, photos and overlays; operator also
inspects; admin also deletes and may send any threshold. ``/healthz`` and ``/readyz`` are open.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from scratchdet.service.config import ACCEPTED_TYPES
from scratchdet.service.db import HistoryFilter, InspectionRow
from scratchdet.service.errors import ServiceError
from scratchdet.service.filters import history_filter
from scratchdet.service.imaging import decode_photo, render_overlay
from scratchdet.service.inspector import InspectionResult, Inspector
from scratchdet.service.keys import Principal
from scratchdet.service.recording import PartInfo, store_and_record
from scratchdet.service.retention import prune, remove_photos
from scratchdet.service.schemas import (
    ErrorBody,
    Health,
    Inspection,
    InspectionPage,
    Readiness,
    ThresholdChange,
    ThresholdSetting,
)
from scratchdet.service.security import check_threshold, require
from scratchdet.service.state import STATIC_DIR, ServiceState
from scratchdet.service.tables import NAME_CHARS, SERIAL_CHARS

log = logging.getLogger("scratchdet.service")
api_router = APIRouter()
page_router = APIRouter(include_in_schema=False)


def errors(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error responses a route can give (all ``ErrorBody``)."""
    return {code: {"model": ErrorBody} for code in codes}


_SUFFIX = {"JPEG": ".jpg", "PNG": ".png"}
#: The largest OFFSET SQLite and PostgreSQL take (a signed 64-bit integer).
MAX_OFFSET = 2**63 - 1
_VIEWER = Depends(require("viewer"))
_AUTH = (401, 403)
_IMAGE_BODY = {"content": {"image/jpeg": {}, "image/png": {}}}


@dataclass(frozen=True)
class _Outcome:
    data: bytes
    pil_format: str
    width: int
    height: int
    result: InspectionResult
    timings: dict[str, float]


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def parse_threshold(raw: str | None, default: float) -> float:
    """The form's ``threshold``: a number in [0, 1]; absent or blank -> ``default``."""
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ServiceError(
            422, "bad_threshold", f"threshold {raw!r} is not a number; expected 0 <= t <= 1"
        ) from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ServiceError(422, "bad_threshold", f"threshold {raw} is outside [0, 1]")
    return value


def parse_text_field(raw: str | None, name: str, limit: int) -> str | None:
    """A form's text field (serial, lot, station, operator): stripped; blank -> None."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if len(value) > limit:
        raise ServiceError(422, "bad_field", f"{name} is {len(value)} characters long; "
                           f"at most {limit} are kept")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ServiceError(422, "bad_field", f"{name} {value!r} holds control characters")
    return value


def _part_info(serial: str | None, lot: str | None, station: str | None,
               operator: str | None) -> PartInfo:
    return PartInfo(serial=parse_text_field(serial, "serial", SERIAL_CHARS),
                    lot=parse_text_field(lot, "lot", SERIAL_CHARS),
                    station=parse_text_field(station, "station", NAME_CHARS),
                    operator=parse_text_field(operator, "operator", NAME_CHARS))


def _inspect_upload(
    inspector: Inspector, source: BinaryIO, name: str, formats: tuple[str, ...], threshold: float,
    max_bytes: int, max_pixels: int,
) -> _Outcome:
    """Read, check and decode the upload, then inspect it (runs in a gate thread)."""
    started = time.perf_counter()
    data = source.read(max_bytes + 1)
    if not data:
        raise ServiceError(422, "empty_photo", f"photo '{name}' is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ServiceError(413, "too_large", f"photo '{name}' is over the {max_bytes}-byte limit")
    photo, found = decode_photo(data, formats, max_pixels, name)
    decoded = time.perf_counter()
    result = inspector.inspect(photo, threshold)
    timings = {"decode_ms": (decoded - started) * 1000.0, **result.timings}
    timings["inspect_ms"] = (time.perf_counter() - decoded) * 1000.0
    return _Outcome(data, found, photo.width, photo.height, result, timings)


def _store(state: ServiceState, outcome: _Outcome, name: str, threshold: float,
           part: PartInfo) -> InspectionRow:
    """Keep the photo (atomic write) and add its history row."""
    row = store_and_record(
        state.history, state.settings.storage_dir, outcome.data, _SUFFIX[outcome.pil_format],
        outcome.result, name=name, size=(outcome.width, outcome.height), threshold=threshold,
        timings=outcome.timings, part=part)
    _apply_retention(state)
    return row


def _apply_retention(state: ServiceState) -> None:
    """Prune after an insert; a failure is logged, never the request's failure."""
    settings = state.settings
    if settings.keep_days is None and settings.max_photos is None:
        return
    try:
        pruned = prune(state.history, settings.storage_dir, settings.keep_days,
                       settings.max_photos)
    except Exception:
        log.exception("retention pruning failed; it is tried again after the next insert")
        return
    if pruned.rows:
        log.info("retention: removed %d inspections, %d photos", pruned.rows, pruned.photos)


def _accepted_formats(
    request: Request, photo: UploadFile | None
) -> tuple[UploadFile, tuple[str, ...]]:
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise ServiceError(
            415, "unsupported_media_type",
            f"expected a multipart/form-data body with a 'photo' file field, "
            f"got Content-Type {content_type or 'none'!r}",
        )
    if photo is None:
        raise ServiceError(422, "missing_photo", "the form has no 'photo' file field")
    formats = ACCEPTED_TYPES.get((photo.content_type or "").split(";")[0].strip().lower())
    if formats is None:
        raise ServiceError(
            415, "unsupported_media_type",
            f"photo '{photo.filename}' has content type {photo.content_type!r}; "
            "accepted: image/jpeg, image/png",
        )
    return photo, formats


@api_router.post(
    "/v1/inspect", response_model=Inspection,
    responses=errors(400, *_AUTH, 413, 415, 422, 503, 504),
)
async def inspect(
    request: Request,
    photo: UploadFile | None = File(None, description="JPEG or PNG photo of one part"),
    threshold: str | None = Form(
        None, description="score threshold in [0, 1]; non-admin keys only within the "
        "configured bounds (default: the service's threshold alone)"),
    serial: str | None = Form(None, description=f"part serial (<= {SERIAL_CHARS} characters)"),
    lot: str | None = Form(None, description=f"production lot (<= {SERIAL_CHARS} characters)"),
    station: str | None = Form(None, description=f"station name (<= {NAME_CHARS} characters)"),
    operator: str | None = Form(None, description=f"who runs the station (<= {NAME_CHARS})"),
    principal: Principal = Depends(require("operator")),
) -> Inspection:
    """Detect scratches on one photo (operator role); the result is kept in the history
    with the part's serial, lot, station and operator as sent."""
    started = time.perf_counter()
    state = _state(request)
    upload, formats = _accepted_formats(request, photo)
    part = _part_info(serial, lot, station, operator)
    level = parse_threshold(threshold, state.settings.default_threshold)
    check_threshold(principal, level, state.settings.threshold_bounds)
    inspector = state.inspector
    if inspector is None:
        raise ServiceError(503, "not_ready", state.load_error or "the model is still loading")
    name = upload.filename or "upload"
    settings = state.settings
    outcome, queue_ms = await state.gate.run(
        _inspect_upload, inspector, upload.file, name, formats, level,
        settings.max_upload_bytes, settings.max_pixels,
    )
    outcome.timings["queue_ms"] = queue_ms
    outcome.timings["total_ms"] = (time.perf_counter() - started) * 1000.0
    row = await run_in_threadpool(_store, state, outcome, name, level, part)
    return Inspection.from_row(row)


@api_router.get(
    "/v1/inspections", response_model=InspectionPage, responses=errors(*_AUTH, 422, 503),
    dependencies=[_VIEWER],
)
def list_inspections(
    request: Request,
    limit: int = Query(50, ge=1, le=500, description="rows per page"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="rows to skip (newest first)"),
    where: HistoryFilter = Depends(history_filter),
) -> InspectionPage:
    """The history, newest first, filtered by verdict, date range, decision, serial, lot,
    station and operator; each item with its decisions."""
    history = _state(request).history
    rows, total = history.page(where, limit, offset)
    decided = history.decisions([r.id for r in rows])
    return InspectionPage(items=[Inspection.from_row(r, decided[r.id]) for r in rows],
                          total=total, limit=limit, offset=offset)


def row_or_404(request: Request, inspection_id: str) -> InspectionRow:
    row = _state(request).history.get(inspection_id)
    if row is None:
        raise ServiceError(404, "not_found", f"no inspection with id {inspection_id!r}")
    return row


@api_router.get(
    "/v1/inspections/{inspection_id}", response_model=Inspection,
    responses=errors(*_AUTH, 404), dependencies=[_VIEWER],
)
def get_inspection(request: Request, inspection_id: str) -> Inspection:
    row = row_or_404(request, inspection_id)
    return Inspection.from_row(row, _state(request).history.decisions([row.id])[row.id])


@api_router.delete(
    "/v1/inspections/{inspection_id}", status_code=204, response_class=Response,
    responses=errors(*_AUTH, 404), dependencies=[Depends(require("admin"))],
)
def delete_inspection(request: Request, inspection_id: str) -> Response:
    """Remove one inspection: its history row and its stored photo (admin role)."""
    state = _state(request)
    row = row_or_404(request, inspection_id)
    state.history.remove([row.id])
    remove_photos(state.settings.storage_dir, [row.photo_path])
    return Response(status_code=204)


@api_router.get(
    "/v1/inspections/{inspection_id}/overlay",
    responses={200: _IMAGE_BODY, **errors(*_AUTH, 404, 422, 503, 504)},
    response_class=Response, dependencies=[_VIEWER],
)
async def get_overlay(
    request: Request,
    inspection_id: str,
    format: Literal["jpeg", "png"] = Query("jpeg"),
    max_side: int | None = Query(None, ge=16, le=20000, description="shrink to this side"),
) -> Response:
    """The stored photo's part region with its kept boxes (solid red) and near-misses
    (dashed orange, down to half the threshold), as on the page (rendered in an inspection
    slot)."""
    state = _state(request)
    row = await run_in_threadpool(row_or_404, request, inspection_id)
    path = Path(row.photo_path)
    if not path.is_file():
        raise ServiceError(404, "photo_missing", f"the photo of inspection {row.id} is gone")
    data, _ = await state.gate.run(
        render_overlay, path, row.boxes, row.scores, row.threshold, row.below_boxes or [],
        row.below_scores or [], row.part_box, max_side, format,
    )
    return Response(data, media_type=f"image/{format}")


@api_router.get(
    "/v1/inspections/{inspection_id}/photo",
    responses={200: _IMAGE_BODY, **errors(*_AUTH, 404)},
    response_class=FileResponse, dependencies=[_VIEWER],
)
def get_photo(request: Request, inspection_id: str) -> FileResponse:
    """The photo as uploaded."""
    row = row_or_404(request, inspection_id)
    path = Path(row.photo_path)
    if not path.is_file():
        raise ServiceError(404, "photo_missing", f"the photo of inspection {row.id} is gone")
    media = "image/png" if path.suffix == ".png" else "image/jpeg"
    return FileResponse(path, media_type=media)


@api_router.get("/v1/threshold", response_model=ThresholdSetting, dependencies=[_VIEWER],
                responses=errors(*_AUTH))
def get_threshold(request: Request) -> ThresholdSetting:
    """The default threshold of inspections and the range other roles may send."""
    settings = _state(request).settings
    return ThresholdSetting(threshold=settings.default_threshold,
                            bounds=settings.threshold_bounds)


@api_router.put("/v1/threshold", response_model=ThresholdSetting,
                responses=errors(*_AUTH, 422), dependencies=[Depends(require("admin"))])
def put_threshold(request: Request, change: ThresholdChange) -> ThresholdSetting:
    """Change the default threshold of the inspections that follow (admin role; until the
    service restarts: start it with --threshold to keep a value). Bounds left unset follow
    the new default."""
    state = _state(request)
    state.settings = state.settings.model_copy(update={"default_threshold": change.threshold})
    log.info("default threshold set to %s", change.threshold)
    return get_threshold(request)


@api_router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers (says nothing about the model)."""
    return Health(status="ok")


@api_router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(request: Request) -> Response:
    """200 once the model is loaded; 503 while loading or when loading failed."""
    state = _state(request)
    if state.inspector is not None:
        body = Readiness(status="ready", model_id=state.inspector.model_id)
        return JSONResponse(body.model_dump(), status_code=200)
    status = "failed" if state.load_error else "loading"
    body = Readiness(status=status, detail=state.load_error)
    return JSONResponse(body.model_dump(), status_code=503)


@page_router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@page_router.get("/docs")
def docs() -> FileResponse:
    return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")
