"""Operator-reviewed inspections -> a COCO training set (``scratchdet data from-history``).

Each inspection's decisions make its labels (:mod:`scratchdet.service.review`): a false
alarm gives a clean photo (no box), confirmed and drawn boxes become ``scratch`` boxes.
Unreviewed inspections, and incomplete ones (boxes drawn, the detector's own boxes neither
confirmed nor called a false alarm), are left out and counted.

``OUT/images/`` gets the photos (copied, or symlinked with ``link``; a photo stored with an
EXIF orientation other than 1 is written upright, since the service's boxes are upright),
named ``<uploaded name>_<8 characters of the inspection id><suffix>`` so that names stay
unique and keep the uploaded name's colour prefix (``white_DSC_0428_1a2b3c4d.JPG`` is a white
part for ``data stats``/``split``/``evaluate``); ``colour`` prefixes names that have none.
``OUT/annotations.json`` is COCO as the sample's (``file_name``, ``width``, ``height``, one
category ``scratch``); ``OUT/inspections.json`` says which inspection and decisions each photo
came from.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from scratchdet.data.records import DEFAULT_COLOURS, UNKNOWN, colour_from_name
from scratchdet.imaging import open_shrunk
from scratchdet.io import atomic_output, check_writable, write_json_atomic
from scratchdet.service.db import History
from scratchdet.service.retention import stored_photo
from scratchdet.service.review import Review, review_of
from scratchdet.service.tables import DecisionRow, HistoryFilter, InspectionRow

CATEGORY = {"id": 1, "name": "scratch"}
_EXIF_ORIENTATION = 0x0112
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class TrainingSetSummary:
    """What an export wrote and what it left out."""

    annotations: Path
    images: int = 0
    clean: int = 0
    boxes: int = 0
    unreviewed: int = 0
    incomplete: int = 0
    missing_photos: list[str] = field(default_factory=list)
    upright_copies: int = 0

    def describe(self) -> str:
        lines = [f"wrote {self.annotations}: {self.images} photos ({self.clean} clean, "
                 f"{self.images - self.clean} with {self.boxes} scratch boxes)",
                 f"left out: {self.unreviewed} unreviewed inspections, {self.incomplete} "
                 "incomplete (boxes drawn, detections neither confirmed nor a false alarm), "
                 f"{len(self.missing_photos)} whose photo is gone"]
        if self.upright_copies:
            lines.append(f"{self.upright_copies} photos written upright (EXIF orientation)")
        return "\n".join(lines)


def export_name(row: InspectionRow, suffix: str, colour: str | None = None,
                colours: Sequence[str] = DEFAULT_COLOURS) -> str:
    """The photo's file name in the training set (see the module's docstring)."""
    stem = _UNSAFE.sub("_", Path(row.filename.replace("\\", "/")).stem).strip("._")[:100]
    name = f"{stem or 'photo'}_{row.id[:8]}{suffix}"
    if colour is not None and colour_from_name(name, colours) == UNKNOWN:
        name = f"{colour}_{name}"
    return name


def find_photo(row: InspectionRow, storage: Path) -> Path | None:
    """The row's photo: in ``storage`` by name, else where the row says (``watch`` rows
    recorded without a storage folder point at the camera's file)."""
    for candidate in (stored_photo(storage, row.photo_path), Path(row.photo_path)):
        if candidate.is_file():
            return candidate
    return None


def _orientation(path: Path) -> int:
    with Image.open(path) as image:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))


def _place_photo(source: Path, target: Path, link: bool) -> bool:
    """Copy (or link) the photo to ``target``; an EXIF-rotated one is written upright as a
    JPEG instead. True when it was re-encoded."""
    target.unlink(missing_ok=True)
    if _orientation(source) != 1:
        upright, _ = open_shrunk(source, None, upright=True)
        with atomic_output(target) as tmp:
            upright.save(tmp, format="JPEG", quality=95)
        return True
    if link:
        target.symlink_to(source.resolve())
    else:
        with atomic_output(target) as tmp:
            shutil.copyfile(source, tmp)
    return False


def _coco_boxes(review: Review, width: int, height: int) -> list[list[float]]:
    """The review's boxes as COCO ``[x, y, w, h]``, clipped to the photo; empty ones go."""
    found = []
    for x1, y1, x2, y2 in review.boxes:
        x1, x2 = max(0.0, x1), min(float(width), x2)
        y1, y2 = max(0.0, y1), min(float(height), y2)
        if x2 > x1 and y2 > y1:
            found.append([round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)])
    return found


@dataclass
class _Builder:
    out: Path
    link: bool
    colour: str | None
    colours: Sequence[str]
    summary: TrainingSetSummary
    coco: dict[str, Any] = field(default_factory=lambda: {
        "categories": [dict(CATEGORY)], "images": [], "annotations": []})
    sources: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: InspectionRow, decisions: list[DecisionRow], storage: Path) -> None:
        review = review_of(row.boxes, decisions)
        if not review.usable:
            if review.state == "unreviewed":
                self.summary.unreviewed += 1
            else:
                self.summary.incomplete += 1
            return
        photo = find_photo(row, storage)
        if photo is None:
            self.summary.missing_photos.append(row.id)
            return
        upright = _orientation(photo) != 1
        name = export_name(row, ".jpg" if upright else photo.suffix.lower(), self.colour,
                           self.colours)
        self.summary.upright_copies += _place_photo(photo, self.out / "images" / name,
                                                    self.link)
        image_id = len(self.coco["images"]) + 1
        self.coco["images"].append({"id": image_id, "file_name": name, "width": row.width,
                                    "height": row.height})
        boxes = _coco_boxes(review, row.width, row.height)
        for box in boxes:
            self.coco["annotations"].append({
                "id": len(self.coco["annotations"]) + 1, "image_id": image_id,
                "category_id": CATEGORY["id"], "iscrowd": 0,
                "area": round(box[2] * box[3], 2), "bbox": box})
        self.summary.images += 1
        self.summary.clean += not boxes
        self.summary.boxes += len(boxes)
        self.sources.append({"file_name": name, "inspection_id": row.id, "review": review.state,
                             "serial": row.serial, "station": row.station,
                             "decisions": [{"decision": d.kind, "by": d.decided_by,
                                            "at": d.decided_at.isoformat() + "Z"}
                                           for d in decisions]})


def export_training_set(history: History, storage: Path, out: Path, *, link: bool = False,
                        colour: str | None = None,
                        colours: Sequence[str] = DEFAULT_COLOURS,
                        where: HistoryFilter | None = None,
                        force: bool = False) -> TrainingSetSummary:
    """Write the reviewed inspections of ``history`` (those matching ``where``) as a COCO
    training set in ``out``, oldest first.

    Raises:
        scratchdet.io.OutputExistsError: ``out/annotations.json`` exists and not ``force``.
    """
    annotations = check_writable(out / "annotations.json", force)
    (out / "images").mkdir(parents=True, exist_ok=True)
    summary = TrainingSetSummary(annotations)
    builder = _Builder(out, link, colour, colours, summary)
    for rows in history.rows(where or HistoryFilter(), newest_first=False):
        decided = history.decisions([r.id for r in rows])
        for row in rows:
            builder.add(row, decided[row.id], storage)
    write_json_atomic(out / "inspections.json", builder.sources, force=True, indent=1)
    write_json_atomic(annotations, builder.coco, force=force)
    return summary
