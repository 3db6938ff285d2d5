"""Labelling-tool exports + photo folders -> one COCO json.

An export is a json list of tasks, one per photo that has scratches::

    {"file_name": "DSC_0428.JPG", "skip": {},
     "result": {"<person id>": {"result": {"marks": [
         {"type": "bbox", "position": {"x": 2037, "y": 1961, "width": 202, "height": 185}}]}}}}

Mapping (it reproduces the published ``annotations/*.json`` box for box):

* the colour is the name of the folder holding the export (``labeling-exports/white/*.json``)
  and the COCO file name is ``<colour>_<file_name>``;
* each mark becomes one box, copied unchanged: ``bbox = [x, y, width, height]``,
  ``area = width * height``, ``iscrowd = 0``, category 1 (``scratch``); marks keep their order;
* a task must hold exactly one person's result, unless ``person`` names the one to use;
* a task with a non-empty ``skip`` was not labelled and is left out (reported in ``notes``);
* clean photos are absent from the exports: every photo in the image folders that no export
  lists is added with no box;
* width/height come from the photo header when the photo is in a folder, else from
  ``default_size`` (the sample's camera gives 4608x3072); with neither it is an error;
* images are sorted by file name and numbered from 1; annotations follow in that order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratchdet.data.photos import PHOTO_SUFFIXES


class ConvertError(ValueError):
    """An export that cannot be converted; the message names the file and the task."""


@dataclass(frozen=True)
class ExportedPhoto:
    """The boxes of one photo as found in one export."""

    file_name: str  # with the colour prefix
    colour: str
    boxes: tuple[tuple[float, float, float, float], ...]
    source: str  # "<export file> task <i>"


@dataclass
class ConvertResult:
    """The COCO dict plus what the user should know (skipped tasks, counts)."""

    coco: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def find_exports(paths: Sequence[str | Path]) -> list[Path]:
    """Export json files: each path is a json file or a folder searched recursively."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob("*.json")))
        elif p.is_file():
            found.append(p)
        else:
            raise ConvertError(f"{p}: no such export file or folder")
    if not found:
        raise ConvertError(f"no export json found in {', '.join(map(str, paths))}")
    return found


def _pick_result(task: dict[str, Any], where: str, person: str | None) -> dict[str, Any]:
    results = task.get("result")
    if not isinstance(results, dict) or not results:
        raise ConvertError(f"{where}: expected 'result' with one person's result, got {results!r}")
    if person is not None:
        if person not in results:
            raise ConvertError(f"{where}: no result of person {person} (has: {', '.join(results)})")
        return results[person]
    if len(results) > 1:
        raise ConvertError(
            f"{where}: {len(results)} people's results ({', '.join(results)}); "
            "choose one with --person"
        )
    return next(iter(results.values()))


def _mark_box(mark: Any, where: str) -> tuple[float, float, float, float]:
    if not isinstance(mark, dict) or mark.get("type") != "bbox":
        got = mark.get("type") if isinstance(mark, dict) else type(mark).__name__
        raise ConvertError(f"{where}: expected a mark of type 'bbox', got {got!r}")
    pos = mark.get("position")
    keys = ("x", "y", "width", "height")
    if not isinstance(pos, dict) or not all(isinstance(pos.get(k), int | float) for k in keys):
        raise ConvertError(f"{where}: expected position {{x, y, width, height}}, got {pos!r}")
    return (pos["x"], pos["y"], pos["width"], pos["height"])


def read_export(
    path: str | Path, colour: str | None = None, person: str | None = None
) -> tuple[list[ExportedPhoto], list[str]]:
    """Photos of one export and notes; ``colour`` defaults to the export's folder name."""
    path = Path(path)
    colour = colour or path.parent.name
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConvertError(f"{path}: line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(tasks, list):
        raise ConvertError(f"{path}: expected a list of tasks, got {type(tasks).__name__}")
    photos: list[ExportedPhoto] = []
    notes: list[str] = []
    for i, task in enumerate(tasks):
        where = f"{path} task {i}"
        name = task.get("file_name") if isinstance(task, dict) else None
        if not isinstance(name, str) or not name:
            raise ConvertError(f"{where}: expected a 'file_name'")
        where += f" ('{name}')"
        if task.get("skip"):
            notes.append(f"{where}: skipped by the labeller; left out")
            continue
        result = _pick_result(task, where, person)
        marks = result.get("result", {}).get("marks", []) if isinstance(result, dict) else None
        if not isinstance(marks, list):
            raise ConvertError(f"{where}: expected result.marks to be a list")
        boxes = tuple(_mark_box(m, f"{where} mark {j}") for j, m in enumerate(marks))
        prefixed = name if name.startswith(f"{colour}_") else f"{colour}_{name}"
        photos.append(ExportedPhoto(prefixed, colour, boxes, where))
    return photos, notes


def list_photos(image_dirs: Sequence[str | Path]) -> dict[str, Path]:
    """Photo file name -> path over the folders (not recursive); a name twice is an error."""
    found: dict[str, Path] = {}
    for d in map(Path, image_dirs):
        if not d.is_dir():
            raise ConvertError(f"{d}: image folder not found")
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES:
                if p.name in found:
                    raise ConvertError(f"{p}: same file name as {found[p.name]}")
                found[p.name] = p
    return found


def _photo_size(name: str, path: Path | None, default_size: tuple[int, int] | None) -> list[int]:
    if path is not None:
        from PIL import Image

        with Image.open(path) as im:
            return list(im.size)
    if default_size is None:
        raise ConvertError(
            f"'{name}': photo not in the image folders, so its size is unknown; "
            "pass --default-size WIDTHxHEIGHT (e.g. 4608x3072)"
        )
    return list(default_size)


def convert_exports(
    exports: Sequence[str | Path],
    image_dirs: Sequence[str | Path] = (),
    default_size: tuple[int, int] | None = None,
    category: str = "scratch",
    person: str | None = None,
    progress: bool = False,
) -> ConvertResult:
    """Build one COCO dict from export files/folders and photo folders (see module doc).

    ``progress`` shows a tqdm bar while photo headers are read for their sizes.
    """
    from tqdm import tqdm

    photos: dict[str, ExportedPhoto] = {}
    notes: list[str] = []
    for path in find_exports(exports):
        found, skipped = read_export(path, person=person)
        notes.extend(skipped)
        for photo in found:
            if photo.file_name in photos:
                other = photos[photo.file_name].source
                raise ConvertError(f"{photo.source}: photo also labelled in {other}")
            photos[photo.file_name] = photo
    on_disk = list_photos(image_dirs)
    clean = sorted(set(on_disk) - set(photos))
    images, annotations = [], []
    names = sorted(set(photos) | set(clean))
    bar = tqdm(names, desc="reading photo sizes", unit="photo", disable=not progress)
    for image_id, name in enumerate(bar, start=1):
        w, h = _photo_size(name, on_disk.get(name), default_size)
        images.append({"id": image_id, "file_name": name, "width": w, "height": h})
        boxes = photos[name].boxes if name in photos else ()
        for x, y, bw, bh in boxes:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                 "iscrowd": 0, "area": bw * bh, "bbox": [x, y, bw, bh]}
            )  # fmt: skip
    notes.append(
        f"{len(photos)} labelled photos ({len(annotations)} boxes) from the exports, "
        f"{len(clean)} clean photos from the folders, "
        f"{sum(1 for n in photos if n not in on_disk)} labelled photos not on disk"
    )
    coco = {"categories": [{"id": 1, "name": category}], "images": images,
            "annotations": annotations}  # fmt: skip
    return ConvertResult(coco, notes)
