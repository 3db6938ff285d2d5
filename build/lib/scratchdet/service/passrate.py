"""Pass rate per local day and per shift (pure functions over ``(time, verdict)`` pairs).

Shifts are given by their starting hours in local time (``serve --shifts 6,14,22``: 06-14,
14-22 and 22-06). A shift belongs to the day it started on: an inspection at 02:00 on the
28th is in the 22-06 shift of the 27th. Days are local days too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from scratchdet.service.tables import as_utc

DEFAULT_SHIFTS: tuple[int, ...] = (6, 14, 22)


def check_shifts(starts: Sequence[int]) -> tuple[int, ...]:
    """Starting hours: at least one, each in 0..23, strictly increasing.

    Raises:
        ValueError: naming what was given and what is expected.
    """
    hours = tuple(starts)
    if not hours or any(not 0 <= h <= 23 for h in hours) or list(hours) != sorted(set(hours)):
        raise ValueError(f"shift starts {list(hours)}: expected increasing hours in 0..23, "
                         "e.g. 6,14,22")
    return hours


def parse_shifts(text: str) -> tuple[int, ...]:
    """``"6,14,22"`` -> ``(6, 14, 22)`` (see :func:`check_shifts`)."""
    try:
        hours = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"shifts {text!r}: expected hours like 6,14,22") from None
    return check_shifts(hours)


def shift_names(starts: Sequence[int]) -> list[str]:
    """``(6, 14, 22)`` -> ``["06-14", "14-22", "22-06"]``."""
    ends = [*starts[1:], starts[0]]
    return [f"{a:02d}-{b:02d}" for a, b in zip(starts, ends, strict=True)]


def shift_of(local: datetime, starts: Sequence[int]) -> tuple[date, str]:
    """The shift a local time falls in: (the day it started, its name)."""
    names = shift_names(starts)
    index = sum(1 for h in starts if h <= local.hour) - 1
    day = local.date()
    if index < 0:  # before the first start: the last shift of the day before
        index, day = len(starts) - 1, day - timedelta(days=1)
    return day, names[index]


@dataclass
class Tally:
    total: int = 0
    passed: int = 0

    def add(self, passed: bool) -> None:
        self.total += 1
        self.passed += int(passed)

    @property
    def rate(self) -> float | None:
        return self.passed / self.total if self.total else None


@dataclass
class PassRates:
    """Counts per local day and per (shift day, shift), and in all."""

    shifts: list[str]
    days: dict[date, Tally] = field(default_factory=dict)
    by_shift: dict[tuple[date, str], Tally] = field(default_factory=dict)
    overall: Tally = field(default_factory=Tally)


def local_time(moment: datetime, zone: tzinfo | None) -> datetime:
    """A stored (naive UTC) or aware time in ``zone`` (None: the server's local zone)."""
    return as_utc(moment).astimezone(zone)


def pass_rates(rows: Iterable[tuple[datetime, str]], starts: Sequence[int],
               zone: tzinfo | None = None) -> PassRates:
    """Tally ``(created_at, verdict)`` pairs per local day and per shift."""
    result = PassRates(shift_names(starts))
    for moment, verdict in rows:
        local = local_time(moment, zone)
        passed = verdict == "pass"
        result.overall.add(passed)
        result.days.setdefault(local.date(), Tally()).add(passed)
        result.by_shift.setdefault(shift_of(local, starts), Tally()).add(passed)
    return result
