"""Seeded, stratified train/val/test splits and k folds of COCO files.

Photos are grouped by stratum = (colour, clean/scratched). Strata are visited in sorted order;
within a stratum the photos are sorted by file name and shuffled by one ``random.Random(seed)``
shared by all strata. :func:`split_coco` cuts each stratum into consecutive parts whose sizes
follow the ratios (largest-remainder rounding, ties to the earlier split);
:func:`stratified_folds` deals the photos round-robin into ``k`` folds, the deal continuing from
stratum to stratum. The same input and seed always give the same split; every photo lands in
exactly one split, with all its boxes (:func:`subset_coco`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Iterator, Mapping, Sequence
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


def shuffled_strata(coco: Mapping[str, Any], seed: int = 0,
                    colours: Sequence[str] = DEFAULT_COLOURS) -> Iterator[list[dict[str, Any]]]:
    """The images of each (colour, clean/scratched) stratum, strata in sorted order, each
    sorted by file name and then shuffled by one ``random.Random(seed)`` (see module doc)."""
    with_boxes = {a["image_id"] for a in coco.get("annotations", [])}
    strata: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for img in coco.get("images", []):
        state = "scratched" if img["id"] in with_boxes else "clean"
        strata.setdefault((colour_from_name(img["file_name"], colours), state), []).append(img)
    rng = random.Random(seed)
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda im: im["file_name"])
        rng.shuffle(members)
        yield members


def subset_coco(coco: Mapping[str, Any], image_ids: Collection[int]) -> dict[str, Any]:
    """The COCO dict of the images ``image_ids`` with their boxes (ids and order kept).

    Args:
        coco: a COCO dict (``categories``, ``images``, ``annotations``).
        image_ids: the image ids to keep (a set is fastest).

    Returns:
        ``{"categories", "images", "annotations"}``; other top-level keys are dropped.
    """
    return {
        "categories": list(coco.get("categories", [])),
        "images": [im for im in coco.get("images", []) if im["id"] in image_ids],
        "annotations": [a for a in coco.get("annotations", []) if a["image_id"] in image_ids],
    }


def split_coco(
    coco: Mapping[str, Any],
    ratios: Mapping[str, float],
    seed: int = 0,
    colours: Sequence[str] = DEFAULT_COLOURS,
) -> dict[str, dict[str, Any]]:
    """Split one COCO dict into ``{split name: COCO dict}``; ids are kept from the input."""
    if not ratios:
        raise SplitError("no split ratios given")
    names = list(ratios)
    chosen: dict[str, set[int]] = {n: set() for n in names}
    for members in shuffled_strata(coco, seed, colours):
        start = 0
        for name, size in zip(names, allocate(len(members), list(ratios.values())), strict=True):
            chosen[name].update(im["id"] for im in members[start : start + size])
            start += size
    return {name: subset_coco(coco, chosen[name]) for name in names}


def stratified_folds(coco: Mapping[str, Any], k: int, seed: int = 0,
                     colours: Sequence[str] = DEFAULT_COLOURS) -> list[list[int]]:
    """The image ids of each of ``k`` folds, stratified by (colour, clean/scratched).

    The shuffled strata (:func:`shuffled_strata`) are dealt round-robin, the deal continuing
    from stratum to stratum, so that fold sizes differ by at most one photo. Each fold lists
    its ids in dealing order.

    Raises:
        SplitError: ``k < 2`` or fewer photos than folds.
    """
    if k < 2:
        raise SplitError(f"cross-validation needs at least 2 folds, got {k}")
    n = len(coco.get("images", []))
    if n < k:
        raise SplitError(f"{n} photos cannot fill {k} folds")
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for members in shuffled_strata(coco, seed, colours):
        for img in members:
            folds[dealt % k].append(int(img["id"]))
            dealt += 1
    return folds


def merge_present(root: Path, splits: Sequence[str]) -> dict[str, Any]:
    """One COCO dict of the photos of ``root/annotations/<split>.json`` present in
    ``root/<split>/``; file names become ``<split>/<name>``, ids are renumbered."""
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    cats = None
    for split in splits:
        ann_path = root / "annotations" / f"{split}.json"
        if not ann_path.is_file():
            raise FileNotFoundError(f"{ann_path}: not found (expected the sample layout)")
        coco = json.loads(ann_path.read_text(encoding="utf-8"))
        cats = cats or coco["categories"]
        present = {im["id"]: im for im in coco["images"]
                   if (root / split / im["file_name"]).is_file()}
        new_id = {old: len(images) + k + 1 for k, old in enumerate(present)}
        images += [{**im, "id": new_id[i], "file_name": f"{split}/{im['file_name']}"}
                   for i, im in present.items()]
        anns += [{**a, "image_id": new_id[a["image_id"]]} for a in coco["annotations"]
                 if a["image_id"] in new_id]
    for k, a in enumerate(anns, start=1):
        a["id"] = k
    if not images:
        raise FileNotFoundError(f"{root}: none of the photos of {', '.join(splits)} is there")
    return {"images": images, "annotations": anns, "categories": cats}


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
