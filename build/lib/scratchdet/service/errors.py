"""One JSON shape for every error: ``{"error": "<code>", "detail": "<what was wrong>"}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from scratchdet.service.db import Trouble, database_trouble

log = logging.getLogger("scratchdet.service")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    503: "unavailable",
    504: "timeout",
}


class ServiceError(Exception):
    """A refusal the client caused or must retry; ``detail`` names the problem."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def database_unavailable(trouble: Trouble, retry_after_s: int) -> ServiceError:
    """A locked, busy or unreachable history database: 503 with ``Retry-After``."""
    busy = trouble == "busy"
    what = "busy (locked by another writer)" if busy else "unavailable"
    return ServiceError(
        503, "database_busy" if busy else "database_unavailable",
        f"the history database is {what}; nothing was recorded, retry in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


def _describe_validation(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return error_response(error.status, error.code, error.detail, error.headers)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    """SQLite's "database is locked", PostgreSQL's lock timeout or a lost connection: 503;
    any other database error (a missing table, bad SQL) is a bug: 500."""
    trouble = database_trouble(error)
    if trouble is None:
        return await _unexpected(request, error)
    orig = getattr(error, "orig", None)
    log.warning("history database %s on %s %s: %s", trouble, request.method, request.url.path,
                orig or error)
    settings = getattr(getattr(request.app.state, "service", None), "settings", None)
    refusal = database_unavailable(trouble, getattr(settings, "retry_after_s", 2))
    return error_response(refusal.status, refusal.code, refusal.detail, refusal.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return error_response(422, "invalid_input", _describe_validation(error))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    if error.status_code == 400 and "parsing the body" in detail:
        detail = "could not parse the request body as multipart/form-data"
    code = _CODES.get(error.status_code, "error")
    return JSONResponse(
        {"error": code, "detail": detail}, status_code=error.status_code, headers=error.headers
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", f"internal error: {type(error).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
