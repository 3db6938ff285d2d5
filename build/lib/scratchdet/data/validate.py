"""Check a COCO file and its photo folder; report every problem, never change anything.

Errors make the data unusable as it stands (missing or broken photo, box outside the photo,
duplicate ids, ...); warnings are worth a look but do not stop training (photos on disk that
the json does not list, a stored ``area`` that differs from ``w * h``, ...).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scratchdet.data.photos import PHOTO_SUFFIXES
from scratchdet.data.records import (
    DEFAULT_COLOURS,
    UNKNOWN,
    DatasetError,
    bbox_problem,
    colour_from_name,
    is_int,
    is_number,
)

Level = Literal["error", "warning"]
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Problem:
    """One finding: where (a file), which record (may be empty) and what was expected."""

    level: Level
    where: str
    record: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper()}: {self.located()}"

    def located(self) -> str:
        """``file: record: message`` (without the level)."""
        record = f" {self.record}:" if self.record else ""
        return f"{self.where}:{record} {self.message}"


@dataclass
class ValidationReport:
    """All problems of one COCO file and folder, plus counts for the summary line."""

    annotations: Path
    image_dir: Path | None
    problems: list[Problem] = field(default_factory=list)
    num_images: int = 0
    num_boxes: int = 0
    num_missing: int = 0
    num_photos_checked: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        missing = f", {self.num_missing} missing" if self.image_dir is not None else ""
        return (
            f"{self.annotations}: {self.num_images} photos, {self.num_boxes} boxes; "
            f"{self.num_photos_checked} photos checked{missing}; "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )

    def add(self, level: Level, where: Path | str, record: str, message: str) -> None:
        self.problems.append(Problem(level, str(where), record, message))


class InvalidInputError(DatasetError):
    """An input refused because it has errors; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[Problem], what: str, limit: int = 20) -> None:
        self.problems = tuple(problems)
        lines = [f"{what}: {len(self.problems)} error(s):"]
        lines += [f"  {p.located()}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        super().__init__("\n".join(lines))


def raise_on_errors(problems: Iterable[Problem], what: str) -> None:
    """Raise :class:`InvalidInputError` listing the errors among ``problems``, if any."""
    errors = [p for p in problems if p.level == "error"]
    if errors:
        raise InvalidInputError(errors, what)


def _image_label(img: dict[str, Any]) -> str:
    name = f" '{img['file_name']}'" if "file_name" in img else ""
    return f"image id {img.get('id')}{name}"


def _check_top(report: ValidationReport, coco: Any) -> dict[str, list[Any]] | None:
    where = report.annotations
    if not isinstance(coco, dict):
        report.add("error", where, "", f"expected a COCO object, got {type(coco).__name__}")
        return None
    parts: dict[str, list[Any]] = {}
    for key in ("images", "annotations", "categories"):
        value = coco.get(key)
        if not isinstance(value, list):
            got = "nothing" if value is None else type(value).__name__
            report.add("error", where, "", f"expected a list under '{key}', got {got}")
            value = []
        parts[key] = value
    return parts


def _check_categories(report: ValidationReport, cats: list[Any]) -> set[int]:
    seen: set[int] = set()
    for i, cat in enumerate(cats):
        if not isinstance(cat, dict) or not is_int(cat.get("id")) or "name" not in cat:
            report.add("error", report.annotations, f"categories[{i}]", "expected {id: int, name}")
            continue
        if cat["id"] in seen:
            report.add("error", report.annotations, f"category id {cat['id']}", "duplicate id")
        seen.add(cat["id"])
    return seen


def _image_errors(img: dict[str, Any], need_sizes: bool) -> list[str]:
    """The keys of an image record that are missing (when required) or of the wrong type."""
    required = ("id", "width", "height", "file_name") if need_sizes else ("id",)
    bad = [k for k in ("id", "width", "height") if (k in required or k in img)
           and not is_int(img.get(k))]
    name = img.get("file_name")
    if ("file_name" in required or "file_name" in img) and (not isinstance(name, str) or not name):
        bad.append("file_name")
    return bad


def _check_images(
    report: ValidationReport, images: list[Any], need_sizes: bool = True
) -> dict[int, dict[str, Any]]:
    """Valid image records by id; every malformed or duplicate record is reported."""
    by_id: dict[int, dict[str, Any]] = {}
    names: dict[str, int] = {}
    for i, img in enumerate(images):
        rec = f"images[{i}]"
        if not isinstance(img, dict):
            report.add("error", report.annotations, rec, "expected an object")
            continue
        bad = _image_errors(img, need_sizes)
        if bad:
            want = "int id/width/height, file_name" if need_sizes else "an int id"
            msg = f"missing or invalid {', '.join(bad)} (expected {want})"
            report.add("error", report.annotations, f"{rec} {_image_label(img)}", msg)
            continue
        if img.get("width", 1) <= 0 or img.get("height", 1) <= 0:
            size = f"{img['width']}x{img['height']}"
            report.add("error", report.annotations, _image_label(img), f"size {size} not > 0")
        if img["id"] in by_id:
            first = by_id[img["id"]]["file_name"]
            msg = f"duplicate image id (also used by '{first}')"
            report.add("error", report.annotations, _image_label(img), msg)
            continue
        if img.get("file_name") in names:
            msg = f"duplicate file name (also image id {names[img['file_name']]})"
            report.add("error", report.annotations, _image_label(img), msg)
        if "file_name" in img:
            names[img["file_name"]] = img["id"]
        by_id[img["id"]] = img
    return by_id


def _check_box(
    report: ValidationReport, ann: dict[str, Any], rec: str, img: dict[str, Any] | None,
    bounds: bool = True,
) -> None:
    bbox = ann.get("bbox")
    problem = bbox_problem(bbox)
    if problem is not None:
        report.add("error", report.annotations, rec, problem)
        return
    x, y, w, h = bbox
    sized = img is not None and is_int(img.get("width")) and is_int(img.get("height"))
    if bounds and sized and (x < 0 or y < 0 or x + w > img["width"] or y + h > img["height"]):
        msg = (
            f"bbox {bbox} is outside the {img['width']}x{img['height']} photo "
            f"(expected 0 <= x, 0 <= y, x + w <= width, y + h <= height)"
        )
        report.add("error", report.annotations, rec, msg)
    area = ann.get("area")
    if "area" in ann and (not is_number(area) or not math.isfinite(area) or area < 0):
        msg = f"area {area!r}: expected a finite number >= 0 (size bands are read from it)"
        report.add("error", report.annotations, rec, msg)
    elif is_number(area) and abs(area - w * h) > 1e-6 * max(1.0, w * h):
        msg = f"stored area {area} differs from w * h = {w * h}"
        report.add("warning", report.annotations, rec, msg)
    if ann.get("iscrowd", 0) not in (0, False):
        msg = "iscrowd is set: COCOeval ignores crowd boxes"
        report.add("warning", report.annotations, rec, msg)


def _check_annotations(
    report: ValidationReport,
    anns: list[Any],
    images: dict[int, dict[str, Any]],
    categories: set[int],
    bounds: bool = True,
) -> None:
    seen: dict[int, int] = {}
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or not is_int(ann.get("id")):
            report.add("error", report.annotations, f"annotations[{i}]", "expected an int 'id'")
            continue
        image_id = ann.get("image_id")
        img = images.get(image_id) if is_int(image_id) else None
        rec = f"annotation id {ann['id']}" + (f" ({_image_label(img)})" if img else "")
        if ann["id"] in seen:
            msg = f"duplicate annotation id (also annotations[{seen[ann['id']]}])"
            report.add("error", report.annotations, rec, msg)
        seen.setdefault(ann["id"], i)
        if img is None:
            msg = f"image_id {ann.get('image_id')!r} is not an image of this file"
            report.add("error", report.annotations, rec, msg)
        cat = ann.get("category_id")
        if not is_int(cat) or cat not in categories:
            known = ", ".join(str(c) for c in sorted(categories)) or "none"
            msg = f"unknown category_id {cat!r} (known: {known})"
            report.add("error", report.annotations, rec, msg)
        _check_box(report, ann, rec, img, bounds)
        report.num_boxes += 1


def check_coco_json(
    report: ValidationReport, coco: Any, *, need_sizes: bool = True, bounds: bool = True
) -> dict[int, dict[str, Any]]:
    """Check a parsed COCO object into ``report`` (the json alone, no photo); return the valid
    image records by id. ``data validate``, ``data stats`` and ``evaluate`` all use it.

    Args:
        report: collects the problems; ``report.annotations`` names the file in them.
        coco: the parsed json.
        need_sizes: images must have ``width``, ``height`` and ``file_name`` (else only an
            int ``id``; the other keys are checked when present).
        bounds: a box outside its photo is an error (else not checked).
    """
    parts = _check_top(report, coco)
    if parts is None:
        return {}
    categories = _check_categories(report, parts["categories"])
    images = _check_images(report, parts["images"], need_sizes)
    report.num_images = len(parts["images"])
    _check_annotations(report, parts["annotations"], images, categories, bounds)
    return images


def coco_errors(
    coco: Any, source: str | Path, *, need_sizes: bool = True, bounds: bool = True
) -> list[Problem]:
    """The errors :func:`check_coco_json` finds in a parsed COCO object (warnings left out)."""
    report = ValidationReport(Path(source), None)
    check_coco_json(report, coco, need_sizes=need_sizes, bounds=bounds)
    return report.errors


def check_photo(path: Path, width: int, height: int, decode: bool = True) -> list[Problem]:
    """Problems of one photo: unreadable, truncated, a decompression bomb (more pixels than
    PIL's ``Image.MAX_IMAGE_PIXELS``), size differs, EXIF orientation not 1.

    The size and EXIF come from the header; ``decode`` also decodes the pixels (at 1/8 scale,
    which still reads every byte) to catch a truncated file. Never raises for a bad photo.
    """
    from PIL import Image, UnidentifiedImageError

    found: list[Problem] = []
    where = str(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                size = im.size
                orientation = im.getexif().get(EXIF_ORIENTATION, 1)
                if decode:
                    im.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
                    im.load()
    except UnidentifiedImageError:
        return [Problem("error", where, "", "unreadable: not a JPEG/PNG image PIL can identify")]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        msg = f"refused as a possible decompression bomb (PIL: {err})"
        return [Problem("error", where, "", msg)]
    except (OSError, SyntaxError, ValueError) as err:
        return [Problem("error", where, "", f"truncated or corrupt image: {err}")]
    except Exception as err:  # any other decoder failure: report this photo, check the rest
        return [Problem("error", where, "", f"cannot decode: {type(err).__name__}: {err}")]
    if size != (width, height):
        got = f"{size[0]}x{size[1]}"
        msg = f"decoded size {got} differs from width x height {width}x{height} in the json"
        found.append(Problem("error", where, "", msg))
    if orientation != 1:
        msg = (
            f"EXIF orientation {orientation} (expected 1): viewers and loaders that apply it "
            "rotate the pixels, so the boxes would no longer match"
        )
        found.append(Problem("error", where, "", msg))
    return found


def _check_photos(
    report: ValidationReport,
    images: Iterable[dict[str, Any]],
    only_present: bool,
    decode: bool,
    progress: bool,
) -> None:
    from tqdm import tqdm

    assert report.image_dir is not None
    todo = list(images)
    missing: list[str] = []
    for img in tqdm(todo, desc="checking photos", unit="photo", disable=not progress):
        path = report.image_dir / img["file_name"]
        if not path.is_file():
            missing.append(img["file_name"])
            if not only_present:
                msg = f"missing photo: '{img['file_name']}' not found in {report.image_dir}"
                report.add("error", report.annotations, _image_label(img), msg)
            continue
        report.num_photos_checked += 1
        for problem in check_photo(path, img["width"], img["height"], decode):
            report.problems.append(
                Problem(problem.level, problem.where, _image_label(img), problem.message)
            )
    report.num_missing = len(missing)
    if missing and only_present:
        msg = (
            f"{len(missing)} of {len(todo)} photos listed are not in {report.image_dir} "
            "(skipped: --only-present)"
        )
        report.add("warning", report.annotations, "", msg)
    listed = {img["file_name"] for img in todo}
    for path in sorted(report.image_dir.rglob("*")):
        name = path.relative_to(report.image_dir).as_posix()
        if path.suffix.lower() in PHOTO_SUFFIXES and name not in listed:
            report.add("warning", path, "", f"photo on disk is not listed in {report.annotations}")


def _check_colours(
    report: ValidationReport, images: Iterable[dict[str, Any]], colours: Sequence[str]
) -> None:
    for img in images:
        if colour_from_name(img["file_name"], colours) == UNKNOWN:
            prefixes = ", ".join(f"{c}_" for c in colours)
            msg = f"file name has no colour prefix ({prefixes}); its colour is '{UNKNOWN}'"
            report.add("warning", report.annotations, _image_label(img), msg)


def validate_coco(
    annotations: str | Path,
    image_dir: str | Path | None,
    *,
    only_present: bool = False,
    decode: bool = True,
    colours: Sequence[str] = DEFAULT_COLOURS,
    progress: bool = False,
) -> ValidationReport:
    """Check a COCO json and (when ``image_dir`` is given) its photos; nothing is modified.

    Args:
        annotations: the COCO json.
        image_dir: folder of the photos; ``None`` checks the json alone.
        only_present: missing photos are one warning with a count instead of one error each.
        decode: fully decode each photo to catch truncation (slower).
        colours: recognised colour prefixes (a photo without one gets a warning).
        progress: show a tqdm progress bar over the photos.
    """
    report = ValidationReport(Path(annotations), Path(image_dir) if image_dir else None)
    try:
        text = report.annotations.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        report.add("error", report.annotations, "", f"cannot read the file: {err}")
        return report
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        report.add("error", report.annotations, "", msg)
        return report
    images = check_coco_json(report, coco)
    _check_colours(report, images.values(), colours)
    if report.image_dir is not None:
        if not report.image_dir.is_dir():
            report.add("error", report.image_dir, "", "image folder not found")
        else:
            _check_photos(report, images.values(), only_present, decode, progress)
    return report
