"""Ground truth and detections for the evaluator: loading, checking, conversion to COCO.

Ground truth comes as a :class:`~scratchdet.data.records.Dataset`, a COCO dict or a path
to a COCO json; detections as a list of COCO result dicts or a path to a results json.
Both end up as plain COCO dicts plus one attribute dict per photo (for the subgroups).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchdet.data.records import Dataset, image_attributes

GroundTruth = Dataset | Mapping[str, Any] | str | Path
Detections = Sequence[Mapping[str, Any]] | str | Path

_STANDARD_IMAGE_KEYS = {"id", "file_name", "width", "height"}


@dataclass(frozen=True)
class EvalInputs:
    """Checked inputs: COCO ground truth, result dicts, and attributes per image id."""

    coco: dict[str, Any]
    detections: list[dict[str, Any]]
    attributes: dict[int, dict[str, str]]
    file_names: dict[int, str]
    source: str


def _read_json(path: Path, what: str) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} file not found") from None
    except json.JSONDecodeError as err:
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
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"{source}: expected a COCO dict with a '{key}' list")
    for i, img in enumerate(coco["images"]):
        if not isinstance(img, Mapping) or not isinstance(img.get("id"), int):
            raise ValueError(f"{source}: image #{i}: expected a dict with an integer 'id', "
                             f"got {img!r}")
    image_ids = {int(img["id"]) for img in coco["images"]}
    annotations = []
    for i, ann in enumerate(coco["annotations"]):
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list | tuple) and len(bbox) == 4):
            raise ValueError(f"{source}: annotation #{i} (id {ann.get('id')}): expected bbox "
                             f"[x, y, w, h], got {bbox!r}")
        if int(ann.get("image_id", -1)) not in image_ids:
            raise ValueError(f"{source}: annotation #{i} (id {ann.get('id')}): image_id "
                             f"{ann.get('image_id')!r} is not among the json's images")
        full = {"iscrowd": 0, **ann}
        full.setdefault("area", float(bbox[2]) * float(bbox[3]))
        annotations.append(full)
    return {"images": list(coco["images"]), "annotations": annotations,
            "categories": list(coco["categories"])}


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
    """COCO dict, attributes per image id, and a source name for messages."""
    if isinstance(gt, Dataset):
        source = str(gt.source) if gt.source else "<dataset>"
        coco = _dataset_to_coco(gt)
        return coco, _attributes(coco, gt), source
    if isinstance(gt, str | Path):
        source = str(gt)
        raw = _read_json(Path(gt), "ground-truth COCO")
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: expected a COCO dict, got {type(raw).__name__}")
    else:
        source, raw = "<COCO dict>", gt
    coco = _check_coco(raw, source)
    return coco, _attributes(coco, None), source


def _check_detection(det: Any, i: int, source: str, image_ids: set[int], cat_ids: set[int]) -> dict:
    where = f"{source}: detection #{i}"
    if not isinstance(det, Mapping):
        raise ValueError(f"{where}: expected a dict with image_id, bbox, score, category_id")
    missing = [k for k in ("image_id", "bbox", "score", "category_id") if k not in det]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)} (expected a COCO result dict)")
    bbox = det["bbox"]
    if not (isinstance(bbox, list | tuple) and len(bbox) == 4):
        raise ValueError(f"{where}: expected bbox [x, y, w, h], got {bbox!r}")
    values = [float(v) for v in bbox] + [float(det["score"])]
    if not all(math.isfinite(v) for v in values) or values[2] < 0 or values[3] < 0:
        raise ValueError(f"{where}: expected finite bbox with w, h >= 0 and a finite score, "
                         f"got bbox {bbox!r}, score {det['score']!r}")
    if int(det["image_id"]) not in image_ids:
        raise ValueError(f"{where}: image_id {det['image_id']!r} is not in the ground truth")
    if int(det["category_id"]) not in cat_ids:
        raise ValueError(f"{where}: category_id {det['category_id']!r} is not in the ground "
                         f"truth's categories {sorted(cat_ids)}")
    return {"image_id": int(det["image_id"]), "bbox": values[:4], "score": values[4],
            "category_id": int(det["category_id"])}


def load_detections(dets: Detections, coco: Mapping[str, Any]) -> tuple[list[dict], str]:
    """Checked copies of the result dicts (never the caller's dicts: pycocotools edits them)."""
    if isinstance(dets, str | Path):
        source = str(dets)
        raw = _read_json(Path(dets), "detections")
        if not isinstance(raw, list):
            raise ValueError(f"{source}: expected a list of COCO result dicts, "
                             f"got {type(raw).__name__}")
    else:
        source, raw = "<detections>", list(dets)
    image_ids = {int(img["id"]) for img in coco["images"]}
    cat_ids = {int(c["id"]) for c in coco["categories"]}
    checked = [_check_detection(d, i, source, image_ids, cat_ids) for i, d in enumerate(raw)]
    return checked, source


def load_inputs(gt: GroundTruth, dets: Detections) -> EvalInputs:
    """Load and check ground truth and detections together."""
    coco, attrs, source = load_ground_truth(gt)
    detections, _ = load_detections(dets, coco)
    names = {int(img["id"]): str(img.get("file_name", img["id"])) for img in coco["images"]}
    return EvalInputs(coco, detections, attrs, names, source)
