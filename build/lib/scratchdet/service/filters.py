"""The history filter as query parameters, shared by the list, the CSV export and the pass
rate (``GET /v1/inspections``, ``/v1/inspections.csv``, ``/v1/pass-rate``)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Query

from scratchdet.service.errors import ServiceError
from scratchdet.service.tables import NAME_CHARS, SERIAL_CHARS, DecisionFilter, HistoryFilter


def history_filter(
    verdict: Literal["pass", "fail"] | None = Query(None),
    since: datetime | None = Query(None, description="created at or after (ISO 8601; UTC "
                                   "unless it names an offset)"),
    until: datetime | None = Query(None, description="created before (ISO 8601)"),
    decision: DecisionFilter | None = Query(
        None, description="with a decision of this kind; any: reviewed; none: not yet"),
    serial: str | None = Query(None, max_length=SERIAL_CHARS, description="part serial"),
    lot: str | None = Query(None, max_length=SERIAL_CHARS),
    station: str | None = Query(None, max_length=NAME_CHARS),
    operator: str | None = Query(None, max_length=NAME_CHARS),
) -> HistoryFilter:
    """Which inspections a history request means (blank text fields: no condition)."""
    texts = {name: (value.strip() or None) if value is not None else None
             for name, value in (("serial", serial), ("lot", lot), ("station", station),
                                 ("operator", operator))}
    return HistoryFilter(verdict=verdict, since=since, until=until, decision=decision, **texts)


def time_zone(tz: str | None = Query(
        None, description="IANA time zone of local days and shifts, e.g. Europe/Berlin "
        "(default: the server's)")) -> tzinfo | None:
    """The time zone a request asks for; None means the server's local zone."""
    if tz is None or not tz.strip():
        return None
    try:
        return ZoneInfo(tz.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(422, "bad_time_zone",
                           f"time zone {tz!r} is unknown; expected an IANA name such as "
                           "Europe/Berlin or UTC") from None
