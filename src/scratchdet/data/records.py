"""Typed dataset records loaded from a COCO json and an image folder.

Coordinates are COCO ``[x, y, w, h]`` in pixels of the original photo.
Image attributes are strings: ``colour`` (from the file-name prefix by default) and
``state`` (``"scratched"`` when the photo has at least one box, else ``"clean"``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_COLOURS: tuple[str, ...] = ("white", "red")
UNKNOWN = "unknown"


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

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_boxes(self) -> int:
        return sum(len(r.boxes) for r in self.images)


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
) -> Dataset:
    """Build records from an already-parsed COCO dict.

    Args:
        coco: dict with ``images``, ``annotations`` and ``categories``.
        image_dir: folder holding the photos; sets ``ImageRecord.path`` when the file exists.
        colours: recognised file-name prefixes for the ``colour`` attribute.
        only_present: keep only photos found in ``image_dir`` (the others go to ``missing``).
        source: where the dict came from, for messages.
    """
    by_image: dict[int, list[BoxRecord]] = {}
    for ann in coco.get("annotations", []):
        box = BoxRecord(
            id=int(ann["id"]),
            image_id=int(ann["image_id"]),
            category_id=int(ann["category_id"]),
            bbox=tuple(float(v) for v in ann["bbox"]),  # type: ignore[arg-type]
        )
        by_image.setdefault(box.image_id, []).append(box)
    images: list[ImageRecord] = []
    missing: list[str] = []
    for img in coco.get("images", []):
        boxes = tuple(by_image.get(int(img["id"]), ()))
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
                attributes=image_attributes(img["file_name"], len(boxes), colours),
                path=path,
            )
        )
    categories = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    return Dataset(tuple(images), categories, source, tuple(missing))


def load_coco_records(
    annotations: str | Path,
    image_dir: str | Path | None = None,
    colours: Sequence[str] = DEFAULT_COLOURS,
    only_present: bool = False,
) -> Dataset:
    """Load a COCO json into records; see :func:`records_from_coco`."""
    path = Path(annotations)
    with path.open(encoding="utf-8") as f:
        coco = json.load(f)
    return records_from_coco(
        coco, Path(image_dir) if image_dir else None, colours, only_present, source=path
    )
