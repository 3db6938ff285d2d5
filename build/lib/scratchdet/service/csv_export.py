"""The filtered history as CSV (``GET /v1/inspections.csv``): one line per inspection,
newest first, with its latest decision and review state.

Text a station typed (file name, serial, lot, station, operator, note) is written as given,
except that a leading ``= + - @`` (or tab/CR) is escaped with ``'`` so that a spreadsheet
does not run it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime, tzinfo

from scratchdet.service.db import History
from scratchdet.service.passrate import local_time
from scratchdet.service.review import review_of
from scratchdet.service.tables import DecisionRow, HistoryFilter, InspectionRow, as_utc

COLUMNS = (
    "id", "created_at_utc", "local_time", "filename", "serial", "lot", "station", "operator",
    "verdict", "threshold", "num_boxes", "max_score", "review", "decision", "decided_by",
    "decided_at_utc", "note", "model_id", "total_ms",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str | None) -> str:
    """A typed text as a spreadsheet-safe cell ('' for None)."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else as_utc(moment).isoformat()


def csv_row(row: InspectionRow, decisions: Sequence[DecisionRow],
            zone: tzinfo | None) -> list[str]:
    """The cells of one inspection (``zone``: of the local time; None: the server's)."""
    last = decisions[-1] if decisions else None
    best = max(row.scores, default=0.0)
    return [
        row.id, _iso(row.created_at), local_time(row.created_at, zone).isoformat(),
        safe_text(row.filename), safe_text(row.serial), safe_text(row.lot),
        safe_text(row.station), safe_text(row.operator), row.verdict, f"{row.threshold:g}",
        str(row.num_boxes), f"{best:.6g}", review_of(row.boxes, decisions).state,
        last.kind if last else "", last.decided_by if last else "",
        _iso(last.decided_at if last else None), safe_text(last.note if last else None),
        row.model_id, f"{row.timings.get('total_ms', 0.0):.1f}",
    ]


def csv_chunks(history: History, where: HistoryFilter, zone: tzinfo | None) -> Iterator[str]:
    """The header, then the rows of each batch of the history, as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for rows in history.rows(where):
        decided = history.decisions([r.id for r in rows])
        writer.writerows(csv_row(r, decided[r.id], zone) for r in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
