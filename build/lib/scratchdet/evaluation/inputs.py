"""Ground truth and detections for the evaluator: loading, checking, conversion to COCO.

Ground truth comes as a :class:`~scratchdet.data.records.Dataset`, a COCO dict, a
:class:`CocoSubset` or a path to a COCO json; detections as a list of COCO result dicts or a
path to a results json. Both are checked with the validator of ``scratchdet data validate``
(:func:`~scratchdet.data.validate.coco_errors`, :func:`detection_errors`) and refused with
:class:`~scratchdet.data.validate.InvalidInputError` listing every error before anything is
scored. Both end up as plain COCO dicts plus one attribute dict per photo (for the subgroups).

:func:`scope_inputs` picks the ground-truth photos a run predicted (``scratchdet evaluate``
scores only those; the :func:`~scratchdet.evaluation.evaluate` function scores every photo
of the ground truth it is given).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchdet.data.records import Dataset, bbox_problem, image_attributes, is_int, is_number
from scratchdet.data.split import subset_coco
from scratchdet.data.validate import Problem, coco_errors, raise_on_errors

#: Written by ``scratchdet predict`` beside ``results.bbox.json``: every photo it was given.
IMAGE_IDS_FILE = "image_ids.json"
#: Written beside them: one row (with ``image_id``) per photo predicted (not the unreadable).
VERDICTS_FILE = "verdicts.csv"


@dataclass(frozen=True)
class CocoSubset:
    """A parsed COCO dict with the name it is reported under (e.g. some photos of a file)."""

    coco: Mapping[str, Any]
    source: str


GroundTruth = Dataset | CocoSubset | Mapping[str, Any] | str | Path
Detections = Sequence[Mapping[str, Any]] | str | Path

_STANDARD_IMAGE_KEYS = {"id", "file_name", "width", "height"}
_RESULT_KEYS = ("image_id", "bbox", "score", "category_id")


@dataclass(frozen=True)
class EvalInputs:
    """Checked inputs: COCO ground truth, result dicts, and attributes per image id."""

    coco: dict[str, Any]
    detections: list[dict[str, Any]]
    attributes: dict[int, dict[str, str]]
    file_names: dict[int, str]
    source: str


def read_json(path: Path, what: str) -> Any:
    """Parse a json file; a missing file or malformed JSON names the file and ``what``."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({what}): {err}") from None


def _dataset_to_coco(dataset: Dataset) -> dict[str, Any]:
    images, annotations = [], []
    for rec in dataset.images:
        images.append(
            {"id": rec.id, "file_name": rec.file_name, "width": rec.width, "height": rec.height}
        )
        for box in rec.boxes:
            annotations.append(
                {
                    "id": box.id,
                    "image_id": box.image_id,
                    "category_id": box.category_id,
                    "bbox": list(box.bbox),
                    "area": box.area,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i, "name": n} for i, n in sorted(dataset.categories.items())]
    return {"images": images, "annotations": annotations, "categories": categories}


def _check_coco(coco: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The checked COCO dict (``iscrowd`` and ``area`` filled in); refuses any error.

    Only an int ``id`` is required of an image; a box outside its photo is not an error here
    (``data validate`` reports it): it is scored as it is.
    """
    raw = dict(coco)
    problems = coco_errors(raw, source, need_sizes=False, bounds=False)
    raise_on_errors(problems, f"{source}: ground truth refused")
    annotations = []
    for ann in raw["annotations"]:
        full = {"iscrowd": 0, **ann}
        full.setdefault("area", float(ann["bbox"][2]) * float(ann["bbox"][3]))
        annotations.append(full)
    return {"images": list(raw["images"]), "annotations": annotations,
            "categories": list(raw["categories"])}


def _attributes(coco: Mapping[str, Any], dataset: Dataset | None) -> dict[int, dict[str, str]]:
    if dataset is not None:
        attrs = {rec.id: dict(rec.attributes) for rec in dataset.images}
    else:
        counts = Counter(int(a["image_id"]) for a in coco["annotations"])
        attrs = {int(img["id"]): image_attributes(str(img.get("file_name", "")),
                                                  counts[int(img["id"])])
                 for img in coco["images"]}
    for img in coco["images"]:
        extra = {
            k: str(v) for k, v in img.items()
            if k not in _STANDARD_IMAGE_KEYS and isinstance(v, str | int | bool)
        }
        attrs[int(img["id"])] = {**extra, **attrs.get(int(img["id"]), {})}
    return attrs


def load_ground_truth(gt: GroundTruth) -> tuple[dict[str, Any], dict[int, dict[str, str]], str]:
    """COCO dict, attributes per image id, and a source name for messages.

    Raises:
        InvalidInputError: (a ValueError) the ground truth has errors; all are listed.
        FileNotFoundError, ValueError: a missing or malformed json file.
    """
    if isinstance(gt, Dataset):
        source = str(gt.source) if gt.source else "<dataset>"
        coco = _check_coco(_dataset_to_coco(gt), source)
        return coco, _attributes(coco, gt), source
    if isinstance(gt, str | Path):
        source, raw = str(gt), read_json(Path(gt), "ground-truth COCO")
    elif isinstance(gt, CocoSubset):
        source, raw = gt.source, gt.coco
    else:
        source, raw = "<COCO dict>", gt
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: expected a COCO dict, got {type(raw).__name__}")
    coco = _check_coco(raw, source)
    return coco, _attributes(coco, None), source


def _detection_problem(det: Any, image_ids: Collection[int], cat_ids: Collection[int]) -> str:
    """What is wrong with one COCO result dict ('' when nothing)."""
    if not isinstance(det, Mapping):
        return f"expected a dict with {', '.join(_RESULT_KEYS)}, got {type(det).__name__}"
    missing = [k for k in _RESULT_KEYS if k not in det]
    if missing:
        return f"missing {', '.join(missing)} (expected a COCO result dict)"
    image_id, score, cat = det["image_id"], det["score"], det["category_id"]
    if not is_int(image_id) or image_id not in image_ids:
        return f"image_id {image_id!r} is not in the ground truth (expected one of its image ids)"
    if not is_number(score) or not math.isfinite(score) or not 0 <= score <= 1:
        return f"score {score!r}: expected a finite number in [0, 1]"
    problem = bbox_problem(det["bbox"])
    if problem is not None:
        return problem
    if not is_int(cat) or cat not in cat_ids:
        return f"category_id {cat!r} is not in the ground truth's categories {sorted(cat_ids)}"
    return ""


def detection_errors(dets: Sequence[Any], source: str, image_ids: Collection[int],
                     category_ids: Collection[int]) -> list[Problem]:
    """One error per bad COCO result dict: ``image_id`` not an int of the ground truth,
    ``score`` not a finite number in [0, 1], ``bbox`` not 4 finite numbers with w, h > 0
    (:func:`~scratchdet.data.records.bbox_problem`), ``category_id`` unknown."""
    problems = []
    for i, det in enumerate(dets):
        message = _detection_problem(det, image_ids, category_ids)
        if message:
            image = f" (image_id {det.get('image_id')!r})" if isinstance(det, Mapping) else ""
            problems.append(Problem("error", source, f"detection #{i}{image}", message))
    return problems


def load_detections(dets: Detections, coco: Mapping[str, Any]) -> tuple[list[dict], str]:
    """Checked copies of the result dicts (never the caller's dicts: pycocotools edits them).

    Raises:
        InvalidInputError: (a ValueError) some detections are bad; all are listed.
    """
    if isinstance(dets, str | Path):
        source = str(dets)
        raw = read_json(Path(dets), "detections")
        if not isinstance(raw, list):
            raise ValueError(f"{source}: expected a list of COCO result dicts, "
                             f"got {type(raw).__name__}")
    else:
        source, raw = "<detections>", list(dets)
    image_ids = {int(img["id"]) for img in coco["images"]}
    cat_ids = {int(c["id"]) for c in coco["categories"]}
    raise_on_errors(detection_errors(raw, source, image_ids, cat_ids),
                    f"{source}: detections refused")
    checked = [{"image_id": int(d["image_id"]), "bbox": [float(v) for v in d["bbox"]],
                "score": float(d["score"]), "category_id": int(d["category_id"])} for d in raw]
    return checked, source


def load_inputs(gt: GroundTruth, dets: Detections) -> EvalInputs:
    """Load and check ground truth and detections together."""
    coco, attrs, source = load_ground_truth(gt)
    detections, _ = load_detections(dets, coco)
    names = {int(img["id"]): str(img.get("file_name", img["id"])) for img in coco["images"]}
    return EvalInputs(coco, detections, attrs, names, source)


class ScopeError(ValueError):
    """The photos to score cannot be told: a bad image list, or results that do not match."""


@dataclass(frozen=True)
class Scope:
    """The ground-truth photos to score and the detections on them (see :func:`scope_inputs`).

    Attributes:
        gt: the ground truth of the chosen photos (all of them when ``chosen_by`` is None).
        detections: the checked detections on those photos.
        total: photos in the whole ground truth.
        chosen_by: where the list of predicted photos came from (None: every photo).
        without_detection: with every photo scored: those that have no detection, and the
            ground-truth boxes on them.
        unread: photos the list names but that predict could not read (left out).
        ignored: detections on photos outside the chosen ones (dropped).
    """

    gt: CocoSubset
    detections: list[dict[str, Any]]
    total: int
    chosen_by: str | None
    without_detection: tuple[int, int] = (0, 0)
    unread: int = 0
    ignored: int = 0

    @property
    def scored(self) -> int:
        return len(self.gt.coco["images"])


def _names_to_ids(coco: Mapping[str, Any]) -> dict[str, int | None]:
    """File name and base name -> image id (None when a base name is ambiguous)."""
    out: dict[str, int | None] = {}
    for img in coco["images"]:
        if "file_name" in img:
            base = Path(str(img["file_name"])).name
            out[base] = img["id"] if out.get(base, img["id"]) == img["id"] else None
    for img in coco["images"]:
        if "file_name" in img:
            out[str(img["file_name"])] = img["id"]
    return out


def _list_entries(path: Path) -> list[tuple[str | None, Any]]:
    """``(file name, image id)`` pairs (either may be None) of an image list: a predict
    ``image_ids.json`` (file name -> id), a json list of ids or file names, or text with one
    id or file name a line."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        lines = [ln.strip() for ln in text.splitlines()]
        data = [int(ln) if ln.isdigit() else ln for ln in lines if ln and not ln.startswith("#")]
    if isinstance(data, dict):
        return [(str(k), v) for k, v in data.items()]
    if isinstance(data, list):
        return [(v, None) if isinstance(v, str) else (None, v) for v in data]
    raise ValueError(f"{path}: expected a json object (file name -> image id, as predict's "
                     f"{IMAGE_IDS_FILE}), a json list or one file name a line")


def read_image_list(path: str | Path, coco: Mapping[str, Any]) -> set[int]:
    """The image ids of the ground truth ``coco`` that the list file ``path`` names.

    Raises:
        InvalidInputError: an entry is not a photo of the ground truth, or (a predict
            ``image_ids.json``) its id belongs to another file name there; all are listed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image list file not found")
    ids = {int(img["id"]): Path(str(img.get("file_name", ""))).name for img in coco["images"]}
    by_name = _names_to_ids(coco)
    chosen: set[int] = set()
    problems, mismatched = [], 0
    for name, image_id in _list_entries(path):
        if image_id is None:
            image_id = by_name.get(str(name))
            msg = "no photo of this file name in the ground truth (or several)"
        elif not is_int(image_id) or image_id not in ids:
            msg, image_id = f"image id {image_id!r} is not in the ground truth", None
        elif name is not None and ids[image_id] not in ("", Path(name).name):
            msg, image_id = f"image id {image_id} is '{ids[image_id]}' in the ground truth", None
            mismatched += 1
        if image_id is None:
            label = repr(name) if name is not None else "entry"
            problems.append(Problem("error", str(path), label, msg))
        else:
            chosen.add(int(image_id))
    hint = " (its ids are not this ground truth's: was predict given it with --gt?)"
    raise_on_errors(problems, f"{path}: image list refused{hint if mismatched else ''}")
    return chosen


def _predicted_ids(folder: Path) -> set[int] | None:
    """Image ids of the rows of ``verdicts.csv`` in ``folder`` (None: no such file)."""
    path = folder / VERDICTS_FILE
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "image_id" not in rows[0]:
        return None
    try:
        return {int(row["image_id"]) for row in rows}
    except (TypeError, ValueError):
        raise ValueError(f"{path}: expected an int image_id in every row") from None


def _photo_ids_in(folder: Path, coco: Mapping[str, Any]) -> set[int]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    return {int(img["id"]) for img in coco["images"] if "file_name" in img and (
        (folder / str(img["file_name"])).is_file()
        or (folder / Path(str(img["file_name"])).name).is_file())}


def _chosen_ids(coco: Mapping[str, Any], detections: list[dict[str, Any]], beside: Path | None,
                images_list: str | Path | None, images_dir: str | Path | None,
                ) -> tuple[set[int], str | None, int]:
    """The chosen image ids, where they came from (None: all) and how many listed photos
    predict could not read."""
    if images_list is not None:
        return read_image_list(images_list, coco), f"listed in {images_list}", 0
    if images_dir is not None:
        return _photo_ids_in(Path(images_dir), coco), f"found in {images_dir}", 0
    if beside is None or not beside.is_file():
        return {int(img["id"]) for img in coco["images"]}, None, 0
    chosen, unread = read_image_list(beside, coco), 0
    predicted = _predicted_ids(beside.parent)
    if predicted is not None:
        unread, chosen = len(chosen - predicted), chosen & predicted
    stray = {d["image_id"] for d in detections} - chosen
    if stray:
        raise ScopeError(f"detections on {len(stray)} photo(s) that {beside} does not list as "
                         f"predicted (image ids {sorted(stray)[:5]}): not the same predict run?")
    return chosen, f"listed in {beside}", unread


def scope_inputs(gt: GroundTruth, dets: Detections, *, all_gt: bool = False,
                 images_list: str | Path | None = None,
                 images_dir: str | Path | None = None) -> Scope:
    """The ground-truth photos a run predicted, and its detections, checked.

    The photos are, by priority: every one (``all_gt``); those ``images_list`` names (see
    :func:`read_image_list`); those whose file is in ``images_dir``; else those listed in
    ``image_ids.json`` beside ``dets`` (as ``scratchdet predict`` writes it; a photo without
    a row in ``verdicts.csv`` there could not be read and is left out); else every photo.
    Detections on other photos are dropped (an error for predict's ``image_ids.json``).

    Raises:
        InvalidInputError: the ground truth or the detections have errors (all listed).
        ScopeError: the photos cannot be told (a bad list, results of another run, none).
    """
    coco, _, source = load_ground_truth(gt)
    detections, dsource = load_detections(dets, coco)
    all_ids = {int(img["id"]) for img in coco["images"]}
    beside = Path(dets).parent / IMAGE_IDS_FILE if isinstance(dets, str | Path) else None
    if all_gt:
        beside = images_list = images_dir = None
    try:
        chosen, chosen_by, unread = _chosen_ids(coco, detections, beside, images_list, images_dir)
    except (ValueError, OSError) as err:  # a bad list names its file and entries
        raise ScopeError(f"{dsource}: {err}" if isinstance(err, ScopeError) else str(err)) from None
    if not chosen:
        raise ScopeError(f"{source}: none of its photos is among those predicted "
                         f"({chosen_by}): nothing to score")
    kept = [d for d in detections if d["image_id"] in chosen]
    empty = all_ids - {d["image_id"] for d in kept} if chosen_by is None else set()
    boxes = sum(1 for a in coco["annotations"] if a["image_id"] in empty)
    name = source if chosen == all_ids else f"{source} ({len(chosen)} of {len(all_ids)} photos)"
    return Scope(CocoSubset(subset_coco(coco, chosen), name), kept, len(all_ids), chosen_by,
                 (len(empty), boxes), unread, len(detections) - len(kept))
