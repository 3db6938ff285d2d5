"""Web sign-in: ``POST /v1/session`` trades an API key for an HttpOnly, SameSite=Strict
session cookie; ``GET`` says who is signed in; ``DELETE`` signs out."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Form, Request, Response

from scratchdet.service.errors import ServiceError
from scratchdet.service.keys import Principal
from scratchdet.service.schemas import ErrorBody, SessionInfo
from scratchdet.service.security import SESSION_COOKIE, authenticate
from scratchdet.service.state import ServiceState

session_router = APIRouter()
_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _info(state: ServiceState, principal: Principal, expires: datetime | None) -> SessionInfo:
    settings = state.settings
    low, high = (0.0, 1.0) if principal.may("admin") else settings.threshold_bounds
    return SessionInfo(name=principal.name, role=principal.role, auth=settings.auth,
                       expires_at=expires, threshold_default=settings.default_threshold,
                       threshold_min=low, threshold_max=high)


@session_router.post("/v1/session", response_model=SessionInfo, responses=_ERRORS)
def sign_in(
    request: Request, response: Response, key: str = Form(..., description="an API key")
) -> SessionInfo:
    """Sign the page in with an API key: sets the session cookie (the key is not kept)."""
    state = _state(request)
    if not state.settings.auth:
        return _info(state, authenticate(request), None)
    principal = state.keys.verify(key.strip())
    if principal is None:
        raise ServiceError(401, "unauthorized", "unknown or revoked API key")
    hours = state.settings.session_hours
    token, expires = state.keys.open_session(principal, hours)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(hours * 3600), path="/", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )
    return _info(state, principal, expires)


@session_router.get("/v1/session", response_model=SessionInfo, responses=_ERRORS)
def who_am_i(request: Request) -> SessionInfo:
    """The caller's key name and role (401 when not signed in)."""
    return _info(_state(request), authenticate(request), None)


@session_router.delete("/v1/session", status_code=204, response_class=Response)
def sign_out(request: Request) -> Response:
    """End the page's sign-in (the cookie is cleared and its session forgotten)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        _state(request).keys.close_session(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
