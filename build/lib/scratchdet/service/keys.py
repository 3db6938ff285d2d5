"""API keys and web sign-ins, kept in the history database (only hashes are stored).

A key is ``sdk_`` + 43 URL-safe characters (32 random bytes): high entropy, so one SHA-256
of it is a safe stored form; it is shown once, when created. A web sign-in trades a key for
a random session token (an HttpOnly cookie); revoking the key ends its sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import sessionmaker

from scratchdet.service.db import ApiKeyRow, SessionRow, as_utc, make_engine, to_utc_naive

Role = Literal["viewer", "operator", "admin"]
#: Every role, weakest first: each may do what the ones before it may.
ROLES: tuple[Role, ...] = get_args(Role)
KEY_PREFIX = "sdk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's name and role."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """True when this principal's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class KeyInfo:
    name: str
    role: Role
    created_at: datetime


def hash_secret(secret: str) -> str:
    """The stored form of a key or session token: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


class KeyStore:
    """Creates, lists, checks and revokes API keys; opens and ends web sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create(self, name: str, role: str, now: datetime | None = None) -> str:
        """A new key for ``name`` with ``role``; returns the key (never stored in clear).

        Raises:
            ValueError: a bad name or role, or a key of that name exists already.
        """
        if not _NAME.match(name):
            raise ValueError(f"key name {name!r} must be 1-64 letters, digits or ._@- "
                             "(starting with a letter or digit)")
        checked = check_role(role)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            if session.get(ApiKeyRow, name) is not None:
                raise ValueError(f"a key named {name!r} exists already; revoke it first "
                                 "or choose another name")
            session.add(ApiKeyRow(name=name, role=checked, key_hash=hash_secret(key),
                                  created_at=to_utc_naive(now or datetime.now(UTC))))
        return key

    def list(self) -> list[KeyInfo]:
        with self._sessions() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))
            return [KeyInfo(r.name, check_role(r.role), as_utc(r.created_at)) for r in rows]

    def count(self) -> int:
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)

    def revoke(self, name: str) -> bool:
        """Delete the key (and its web sessions); False when there was none of that name."""
        with self._sessions.begin() as session:
            session.execute(delete(SessionRow).where(SessionRow.key_name == name))
            result = session.execute(delete(ApiKeyRow).where(ApiKeyRow.name == name))
            return bool(getattr(result, "rowcount", 0))

    def verify(self, key: str) -> Principal | None:
        """The principal of a valid key; None for an unknown or revoked one."""
        digest = hash_secret(key)
        with self._sessions() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
            if row is None or not hmac.compare_digest(row.key_hash, digest):
                return None
            return Principal(row.name, check_role(row.role))

    def open_session(self, principal: Principal, hours: float,
                     now: datetime | None = None) -> tuple[str, datetime]:
        """A new web session for ``principal``: its token (for the cookie) and expiry."""
        token = secrets.token_urlsafe(32)
        moment = to_utc_naive(now or datetime.now(UTC))
        expires = moment + timedelta(hours=hours)
        with self._sessions.begin() as session:  # expired sign-ins go as new ones come
            session.execute(delete(SessionRow).where(SessionRow.expires_at <= moment))
            session.add(SessionRow(token_hash=hash_secret(token), key_name=principal.name,
                                   expires_at=expires))
        return token, as_utc(expires)

    def session_principal(self, token: str, now: datetime | None = None) -> Principal | None:
        """Who a session token belongs to; None when unknown, expired or its key revoked."""
        digest = hash_secret(token)
        moment = to_utc_naive(now or datetime.now(UTC))
        query = (select(ApiKeyRow.name, ApiKeyRow.role, SessionRow.token_hash)
                 .join(SessionRow, SessionRow.key_name == ApiKeyRow.name)
                 .where(SessionRow.token_hash == digest, SessionRow.expires_at > moment))
        with self._sessions() as session:
            found = session.execute(query).first()
        if found is None or not hmac.compare_digest(found.token_hash, digest):
            return None
        return Principal(found.name, check_role(found.role))

    def close_session(self, token: str) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(SessionRow).where(SessionRow.token_hash == hash_secret(token)))

    def close(self) -> None:
        self.engine.dispose()


def open_key_store(url: str) -> KeyStore:
    """The keys of the history database at ``url`` (tables created when missing)."""
    return KeyStore(make_engine(url))
