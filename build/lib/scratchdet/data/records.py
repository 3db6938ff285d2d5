"""Typed dataset records loaded from a COCO json and an image folder.

Coordinates are COCO ``[x, y, w, h]`` in pixels of the original photo.
Image attributes are strings: ``colour`` (from the file-name prefix by default) and
``state`` (``"scratched"`` when the photo has at least one box, else ``"clean"``).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_COLOURS: tuple[str, ...] = ("white", "red")
UNKNOWN = "unknown"

#: A function giving the colour of a photo from its file name (see ``colour_of`` below).
ColourFn = Callable[[str], str]


class DatasetError(ValueError):
    """A COCO file that cannot be read into records; the message names the file and record."""


@dataclass(frozen=True)
class BoxRecord:
    """One annotated box."""

    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]  # x, y, w, h

    @property
    def area(self) -> float:
        return self.bbox[2] * self.bbox[3]


@dataclass(frozen=True)
class ImageRecord:
    """One photo with its boxes and attributes; ``path`` is None when not on disk."""

    id: int
    file_name: str
    width: int
    height: int
    boxes: tuple[BoxRecord, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def scratched(self) -> bool:
        return len(self.boxes) > 0

    @property
    def colour(self) -> str:
        return self.attributes.get("colour", UNKNOWN)


@dataclass(frozen=True)
class Dataset:
    """Records of one COCO file, optionally filtered to the photos present on disk."""

    images: tuple[ImageRecord, ...]
    categories: dict[int, str]
    source: Path | None = None
    missing: tuple[str, ...] = ()  # file names listed in the json but absent from disk
    image_dir: Path | None = None  # the folder searched for photos, if any

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_boxes(self) -> int:
        return sum(len(r.boxes) for r in self.images)

    @property
    def present(self) -> tuple[ImageRecord, ...]:
        """The records whose photo was found on disk."""
        return tuple(r for r in self.images if r.path is not None)

    def describe_missing(self) -> str:
        """One line saying how many listed photos are absent from ``image_dir`` ('' if none)."""
        if self.image_dir is None or not self.missing:
            return ""
        listed = len(self.missing) + len(self.present)
        return (
            f"{self.source or '<coco>'}: {len(self.missing)} of {listed} photos listed are "
            f"not in {self.image_dir} ({listed - len(self.missing)} present)"
        )


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number (int or float, Python or numpy), not a bool; NaN and inf included."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def bbox_problem(bbox: Any) -> str | None:
    """What is wrong with a COCO ``[x, y, w, h]`` box, or None when it is 4 finite numbers
    with ``w > 0`` and ``h > 0``. The one box check of validate, records, stats and evaluate."""
    if not isinstance(bbox, list | tuple) or len(bbox) != 4 or not all(map(is_number, bbox)):
        return f"bbox {bbox!r}: expected [x, y, w, h] numbers"
    if not all(math.isfinite(v) for v in bbox):
        return f"bbox {list(bbox)}: not finite (NaN or infinity; expected 4 finite numbers)"
    if bbox[2] <= 0 or bbox[3] <= 0:
        return f"bbox {list(bbox)}: zero or negative size (expected w > 0 and h > 0)"
    return None


def colour_from_name(file_name: str, colours: Sequence[str] = DEFAULT_COLOURS) -> str:
    """Part colour from the file-name prefix (``"red_DSC_0618.JPG"`` -> ``"red"``)."""
    stem = Path(file_name).name.lower()
    for colour in colours:
        if stem.startswith(colour.lower() + "_"):
            return colour
    return UNKNOWN


def image_attributes(
    file_name: str, num_boxes: int, colours: Sequence[str] = DEFAULT_COLOURS
) -> dict[str, str]:
    """The default attributes of a photo: ``colour`` and ``state``."""
    return {
        "colour": colour_from_name(file_name, colours),
        "state": "scratched" if num_boxes else "clean",
    }


def records_from_coco(
    coco: dict[str, Any],
    image_dir: Path | None = None,
    colours: Sequence[str] = DEFAULT_COLOURS,
    only_present: bool = False,
    source: Path | None = None,
    colour_of: ColourFn | None = None,
) -> Dataset:
    """Build records from an already-parsed COCO dict.

    Args:
        coco: dict with ``images``, ``annotations`` and ``categories``.
        image_dir: folder holding the photos; sets ``ImageRecord.path`` when the file exists.
        colours: recognised file-name prefixes for the ``colour`` attribute.
        only_present: keep only photos found in ``image_dir`` (the others go to ``missing``).
        source: where the dict came from, for messages.
        colour_of: file name -> colour; replaces the prefix rule of ``colours`` when given.

    Raises:
        DatasetError: a record lacks a key or has a value of the wrong type, or a box is not
            4 finite numbers with w, h > 0 (:func:`bbox_problem`).
    """
    where = str(source or "<coco>")
    by_image: dict[int, list[BoxRecord]] = {}
    for i, ann in enumerate(coco.get("annotations", [])):
        box = _box_record(ann, f"{where}: annotations[{i}]")
        by_image.setdefault(box.image_id, []).append(box)
    images: list[ImageRecord] = []
    missing: list[str] = []
    for i, img in enumerate(coco.get("images", [])):
        _require(img, ("id", "file_name", "width", "height"), f"{where}: images[{i}]")
        boxes = tuple(by_image.get(int(img["id"]), ()))
        attributes = image_attributes(img["file_name"], len(boxes), colours)
        if colour_of is not None:
            attributes["colour"] = colour_of(img["file_name"])
        path = None
        if image_dir is not None:
            candidate = Path(image_dir) / img["file_name"]
            if candidate.is_file():
                path = candidate
            else:
                missing.append(img["file_name"])
                if only_present:
                    continue
        images.append(
            ImageRecord(
                id=int(img["id"]),
                file_name=img["file_name"],
                width=int(img["width"]),
                height=int(img["height"]),
                boxes=boxes,
                attributes=attributes,
                path=path,
            )
        )
    categories = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    folder = Path(image_dir) if image_dir is not None else None
    return Dataset(tuple(images), categories, source, tuple(missing), folder)


def _require(record: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected an object, got {type(record).__name__}")
    absent = [k for k in keys if k not in record]
    if absent:
        raise DatasetError(f"{where} (id {record.get('id')}): missing key(s) {', '.join(absent)}")


def _box_record(ann: Any, where: str) -> BoxRecord:
    _require(ann, ("id", "image_id", "category_id", "bbox"), where)
    bbox = ann["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DatasetError(f"{where} (id {ann['id']}): bbox must be [x, y, w, h], got {bbox!r}")
    problem = bbox_problem(bbox)
    if problem is not None:
        raise DatasetError(f"{where} (id {ann['id']}, image_id {ann['image_id']!r}): {problem}")
    try:
        return BoxRecord(
            id=int(ann["id"]),
            image_id=int(ann["image_id"]),
            category_id=int(ann["category_id"]),
            bbox=(float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])),
        )
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{where} (id {ann['id']}): expected numbers: {err}") from None


def read_coco_json(path: str | Path) -> dict[str, Any]:
    """Parse a COCO json file; malformed JSON raises :class:`DatasetError` with line/column."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            coco = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{path}: line {err.lineno}, column {err.colno}: malformed JSON: {err.msg}"
        ) from None
    if not isinstance(coco, dict):
        raise DatasetError(
            f"{path}: expected a COCO object with 'images', got {type(coco).__name__}"
        )
    return coco


def to_coco(dataset: Dataset) -> dict[str, Any]:
    """The records back as a COCO dict (ids kept; ``area`` = w*h, ``iscrowd`` = 0)."""
    images, annotations = [], []
    for r in dataset.images:
        images.append({"id": r.id, "file_name": r.file_name, "width": r.width, "height": r.height})
        for b in r.boxes:
            annotations.append(
                {
                    "id": b.id,
                    "image_id": r.id,
                    "category_id": b.category_id,
                    "iscrowd": 0,
                    "area": b.area,
                    "bbox": list(b.bbox),
                }
            )
    categories = [{"id": k, "name": v} for k, v in sorted(dataset.categories.items())]
    return {"categories": categories, "images": images, "annotations": annotations}


def load_coco_records(
    annotations: str | Path,
    image_dir: str | Path | None = None,
    colours: Sequence[str] = DEFAULT_COLOURS,
    only_present: bool = False,
    colour_of: ColourFn | None = None,
) -> Dataset:
    """Load a COCO json into records; see :func:`records_from_coco`.

    ``Dataset.missing`` lists the photos absent from ``image_dir`` and
    ``Dataset.describe_missing()`` says how many in one line.
    """
    path = Path(annotations)
    coco = read_coco_json(path)
    return records_from_coco(
        coco,
        Path(image_dir) if image_dir else None,
        colours,
        only_present,
        source=path,
        colour_of=colour_of,
    )
