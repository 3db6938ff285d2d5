"""Who may call the service: trusted Host names, same-origin writes, API keys and roles.

- :class:`RequestGuard` (ASGI middleware): a Host header not in the allowed names -> 400
  (DNS-rebinding protection); a POST/PUT/PATCH/DELETE whose ``Origin`` is present and not
  the service's own -> 403 (cross-site request forgery). ``/healthz`` and ``/readyz`` are
  exempt from the Host check so that probes may use an IP address.
- :func:`require` (a FastAPI dependency): the caller's key, from ``Authorization: Bearer``
  or the web sign-in cookie; 401 without a valid one, 403 when its role may not.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from scratchdet.service.errors import ServiceError
from scratchdet.service.keys import Principal, Role, open_key_store
from scratchdet.service.state import ServiceState

SESSION_COOKIE = "scratchdet_session"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
NO_AUTH = Principal("anonymous (--no-auth)", "admin")


def split_host(value: str) -> tuple[str, int | None]:
    """``"name:port"``, ``"[::1]:8000"`` or ``"::1"`` -> (lower-case name, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""
    return name, int(port) if port.isdigit() else None


class RequestGuard:
    """Refuse foreign Host names (400) and cross-origin writes (403) with a JSON error."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(split_host(h)[0] for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        refusal = self._refusal(scope, host, headers.get("origin"))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, detail = refusal
        body = json.dumps({"error": code, "detail": detail}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope, host: str, origin: str | None) -> tuple[int, str, str] | None:
        name, port = split_host(host)
        if scope["path"] not in OPEN_PATHS and "*" not in self.allowed and name not in self.allowed:
            allowed = ", ".join(sorted(self.allowed))
            return (400, "bad_host", f"Host {host!r} is not served here; allowed: {allowed} "
                    "(add names with scratchdet serve --allowed-host)")
        if scope["method"] not in _WRITES or origin is None:
            return None
        scheme = scope.get("scheme", "http")
        parts = urlsplit(origin)
        own = (name, port or _DEFAULT_PORTS.get(scheme))
        theirs = ((parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme))
        if origin == "null" or theirs != own:
            return (403, "cross_origin", f"{scope['method']} from origin {origin!r} refused: "
                    f"only pages served by this service ({host}) may change it")
        return None


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _unauthorized(detail: str) -> ServiceError:
    return ServiceError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request) -> Principal:
    """The caller, by ``Authorization: Bearer KEY`` or else the sign-in cookie.

    Raises:
        ServiceError: 401 with no credentials, a malformed header, an unknown or revoked
            key, or an expired sign-in.
    """
    state = _state(request)
    if not state.settings.auth:
        return NO_AUTH
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <API key>'")
        principal = state.keys.verify(key.strip())
        if principal is None:
            raise _unauthorized("unknown or revoked API key")
        return principal
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        principal = state.keys.session_principal(token)
        if principal is None:
            raise _unauthorized("the sign-in has expired or was ended; sign in again")
        return principal
    raise _unauthorized("an API key is needed: send 'Authorization: Bearer <key>' or sign in "
                        "on the page (an admin creates keys with: scratchdet token create)")


def require(role: Role) -> Callable[[Request], Principal]:
    """A dependency that lets through callers whose role includes ``role`` (403 otherwise)."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if not principal.may(role):
            raise ServiceError(
                403, "forbidden", f"key '{principal.name}' has role {principal.role}; "
                f"{request.method} {request.url.path} needs role {role} or higher",
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def check_threshold(principal: Principal, value: float, bounds: tuple[float, float]) -> None:
    """Admins may send any threshold; others only one within ``bounds`` (403 otherwise)."""
    low, high = bounds
    if principal.may("admin") or low <= value <= high:
        return
    allowed = f"{low:g}" if low == high else f"[{low:g}, {high:g}]"
    raise ServiceError(
        403, "threshold_not_allowed",
        f"role {principal.role} may not use threshold {value:g}; allowed: {allowed} "
        "(serve --threshold-min/--threshold-max; an admin key may send any value in [0, 1])",
    )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_refusal(host: str, auth: bool, db_url: str) -> str | None:
    """Why ``serve`` must not start on ``host``, or None when it may.

    ``--no-auth`` only on a loopback address; a non-loopback address with access control on
    needs at least one key in the database (the message gives the command that makes one).
    """
    if not auth:
        if is_loopback(host):
            return None
        return (f"--no-auth is allowed only on a loopback address (127.0.0.1, ::1, localhost), "
                f"not --host {host}: anyone who can reach it could inspect and delete")
    if is_loopback(host):
        return None
    store = open_key_store(db_url)
    try:
        count = store.count()
    finally:
        store.close()
    if count:
        return None
    return (f"--host {host} is reachable from other machines and the database {db_url} has no "
            f"API key; create one first (shown once):\n"
            f"  scratchdet token create admin --role admin --db {shlex.quote(db_url)}")
