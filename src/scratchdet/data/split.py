"""Seeded, stratified train/val/test splits of COCO files.

Photos are grouped by stratum = (colour, clean/scratched). Within a stratum the photos are
sorted by file name, shuffled by ``random.Random(seed)`` and cut into consecutive parts whose
sizes follow the ratios (largest-remainder rounding, ties to the earlier split). The same
input and seed always give the same split; every photo lands in exactly one split, with all
its boxes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scratchdet.data.records import DEFAULT_COLOURS, colour_from_name
from scratchdet.io import check_writable, write_json_atomic


class SplitError(ValueError):
    """Bad ratios or inputs that cannot be merged; the message says what was expected."""


def parse_ratios(text: str) -> dict[str, float]:
    """``"train=0.8,val=0.1,test=0.1"`` -> ``{"train": 0.8, ...}`` (normalised to sum 1)."""
    ratios: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            ratio = float(value)
        except ValueError:
            ratio = -1.0
        if not sep or not name or ratio <= 0:
            raise SplitError(f"ratio '{item}' is not name=positive number (e.g. 'train=0.8')")
        if name in ratios:
            raise SplitError(f"split '{name}' given twice in '{text}'")
        ratios[name] = ratio
    total = sum(ratios.values())
    return {k: v / total for k, v in ratios.items()}


def allocate(n: int, ratios: Sequence[float]) -> list[int]:
    """Sizes summing to ``n`` in proportion to ``ratios`` (largest remainder)."""
    total = sum(ratios)
    exact = [n * r / total for r in ratios]
    sizes = [int(e) for e in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in order[: n - sum(sizes)]:
        sizes[i] += 1
    return sizes


def merge_coco(cocos: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge COCO dicts (``(source name, dict)`` pairs), renumbering image/annotation ids.

    Categories must agree by id and name; a file name in two inputs is an error.
    """
    merged: dict[str, Any] = {"categories": [], "images": [], "annotations": []}
    seen_names: dict[str, str] = {}
    for source, coco in cocos:
        cats = sorted((c["id"], c["name"]) for c in coco.get("categories", []))
        if merged["categories"] and cats != sorted(
            (c["id"], c["name"]) for c in merged["categories"]
        ):
            raise SplitError(f"{source}: categories {cats} differ from the first input's")
        if not merged["categories"]:
            merged["categories"] = [{"id": i, "name": n} for i, n in cats]
        new_id: dict[int, int] = {}
        for img in coco.get("images", []):
            name = img["file_name"]
            if name in seen_names:
                raise SplitError(f"{source}: image '{name}' is also in {seen_names[name]}")
            seen_names[name] = source
            new_id[img["id"]] = len(merged["images"]) + 1
            merged["images"].append({**img, "id": new_id[img["id"]]})
        for ann in coco.get("annotations", []):
            if ann["image_id"] not in new_id:
                raise SplitError(f"{source}: annotation id {ann['id']} has an unknown image_id")
            ann_id = len(merged["annotations"]) + 1
            merged["annotations"].append({**ann, "id": ann_id, "image_id": new_id[ann["image_id"]]})
    return merged


def split_coco(
    coco: Mapping[str, Any],
    ratios: Mapping[str, float],
    seed: int = 0,
    colours: Sequence[str] = DEFAULT_COLOURS,
) -> dict[str, dict[str, Any]]:
    """Split one COCO dict into ``{split name: COCO dict}``; ids are kept from the input."""
    if not ratios:
        raise SplitError("no split ratios given")
    with_boxes = {a["image_id"] for a in coco.get("annotations", [])}
    strata: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for img in coco.get("images", []):
        state = "scratched" if img["id"] in with_boxes else "clean"
        strata.setdefault((colour_from_name(img["file_name"], colours), state), []).append(img)
    rng = random.Random(seed)
    names = list(ratios)
    chosen: dict[str, set[int]] = {n: set() for n in names}
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda im: im["file_name"])
        rng.shuffle(members)
        start = 0
        for name, size in zip(names, allocate(len(members), list(ratios.values())), strict=True):
            chosen[name].update(im["id"] for im in members[start : start + size])
            start += size
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        ids = chosen[name]
        out[name] = {
            "categories": list(coco.get("categories", [])),
            "images": [im for im in coco.get("images", []) if im["id"] in ids],
            "annotations": [a for a in coco.get("annotations", []) if a["image_id"] in ids],
        }
    return out


def write_splits(
    splits: Mapping[str, Mapping[str, Any]], out_dir: str | Path, force: bool = False
) -> list[Path]:
    """Write ``<out_dir>/<name>.json`` per split, atomically; refuses to overwrite unless
    ``force`` (checked for every file before anything is written)."""
    out = Path(out_dir)
    targets = [check_writable(out / f"{name}.json", force) for name in splits]
    return [
        write_json_atomic(path, dict(coco), force=force)
        for path, coco in zip(targets, splits.values(), strict=True)
    ]
