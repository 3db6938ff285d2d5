"""Recording an inspection in the history: the one place an inspection row is made.

``POST /v1/inspect`` (:mod:`scratchdet.service.routes`) stores the uploaded photo and its row
with :func:`store_and_record`; ``scratchdet watch --db`` records each watched photo through
:func:`watch_recorder`, so the operator page lists both alike.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scratchdet.imaging import xywh_to_xyxy
from scratchdet.service.db import History, InspectionRow
from scratchdet.service.imaging import write_atomic
from scratchdet.service.inspector import InspectionResult


@dataclass(frozen=True)
class PartInfo:
    """What the station says about the inspected part (each may be unknown)."""

    serial: str | None = None
    lot: str | None = None
    station: str | None = None
    operator: str | None = None


def record_inspection(history: History, result: InspectionResult, *, name: str,
                      photo_path: Path, size: tuple[int, int], threshold: float,
                      timings: dict[str, float], inspection_id: str | None = None,
                      part: PartInfo | None = None) -> InspectionRow:
    """Add the history row of one inspection (``size``: the photo's width and height)."""
    part = part or PartInfo()
    row = InspectionRow(
        id=inspection_id or uuid.uuid4().hex, created_at=datetime.now(UTC),
        filename=name[:255], photo_path=str(photo_path), width=size[0], height=size[1],
        threshold=threshold, verdict=result.verdict, num_boxes=len(result.boxes),
        boxes=result.boxes, scores=result.scores, timings=timings, model_id=result.model_id,
        serial=part.serial, lot=part.lot, station=part.station, operator=part.operator,
        part_box=result.part_box, below_boxes=result.below_boxes,
        below_scores=result.below_scores,
    )
    history.add(row)
    return row


def store_and_record(history: History, storage_dir: Path, data: bytes, suffix: str,
                     result: InspectionResult, *, name: str, size: tuple[int, int],
                     threshold: float, timings: dict[str, float],
                     inspection_id: str | None = None,
                     part: PartInfo | None = None) -> InspectionRow:
    """Keep the photo in ``storage_dir`` as ``<inspection id><suffix>`` (atomic write), then
    add its row; the photo is removed again when the row cannot be added."""
    inspection_id = inspection_id or uuid.uuid4().hex
    path = storage_dir / f"{inspection_id}{suffix}"
    write_atomic(path, data)
    try:
        return record_inspection(history, result, name=name, photo_path=path, size=size,
                                 threshold=threshold, timings=timings,
                                 inspection_id=inspection_id, part=part)
    except Exception:
        path.unlink(missing_ok=True)
        raise


def watch_recorder(history: History, storage_dir: Path | None = None,
                   ) -> Callable[[dict[str, Any]], None]:
    """A ``scratchdet watch`` hook adding the history row of each inspected photo.

    The hook takes the photo's record (:func:`scratchdet.inference.watch_outputs.photo_record`)
    and skips unreadable photos. The row id derives from the record's key, so a record
    finished again after a restart adds no second row. With ``storage_dir`` the photo is
    copied there as the service stores uploads; else the row points at the photo where
    ``watch`` left it.
    """

    def record(rec: dict[str, Any]) -> None:
        if rec["verdict"] not in ("pass", "fail"):
            return
        inspection_id = hashlib.sha256(rec["key"].encode("utf-8")).hexdigest()[:32]
        if history.get(inspection_id) is not None:
            return
        boxes = rec["boxes"]
        result = InspectionResult(
            boxes=[[round(v, 2) for v in xywh_to_xyxy(b["bbox"])] for b in boxes],
            scores=[float(b["score"]) for b in boxes], verdict=rec["verdict"],
            model_id=rec["model_id"], timings={})
        photo, size = Path(rec["path"]), (rec["width"], rec["height"])
        args: dict[str, Any] = {"name": Path(rec["file"]).name, "size": size,
                                "threshold": rec["threshold"], "timings": rec["timings_ms"],
                                "inspection_id": inspection_id}
        if storage_dir is None:
            record_inspection(history, result, photo_path=photo.resolve(), **args)
        else:
            store_and_record(history, storage_dir, photo.read_bytes(), photo.suffix.lower(),
                             result, **args)

    return record
