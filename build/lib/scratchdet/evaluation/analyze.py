"""``scratchdet analyze``: rank photos, write overlays and crops of the best and worst.

Output folder::

    analysis.json   settings, every photo (worst first), and the files written per photo
    photos.csv      the per-photo table (worst first)
    pr_curves.png   PR curves per subgroup (IoU 0.50, band "all")
    worst/NN_<photo>.jpg, worst/NN_<photo>_cropKK.jpg   (same for best/)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchdet.evaluation.analysis import PhotoAnalysis, analyze_photos, rank_best, rank_worst
from scratchdet.evaluation.bands import SizeBand
from scratchdet.evaluation.evaluator import evaluate
from scratchdet.evaluation.inputs import Detections, GroundTruth
from scratchdet.evaluation.overlays import CropSpec, crops, jpeg_bytes, overlay
from scratchdet.evaluation.plots import pr_curves_png
from scratchdet.io import write_bytes_atomic, write_json_atomic, write_text_atomic


@dataclass(frozen=True)
class AnalysisOutput:
    """What ``write_analysis`` wrote and found."""

    out_dir: Path
    photos: tuple[PhotoAnalysis, ...]  # worst first, all photos of the ground truth
    present: int  # photos found in the image folder
    files: tuple[Path, ...]


def _photos_csv(photos: Sequence[PhotoAnalysis], present: set[int]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = ["image_id", "file_name", "group", "ap50", "gt_boxes", "misses", "false_boxes"]
    writer.writerow([*cols, "present"])
    for p in photos:
        row = p.summary()
        cells = ["" if row[c] is None else row[c] for c in cols]
        writer.writerow([*cells, p.image_id in present])
    return buf.getvalue()


def _write_photo(
    photo: PhotoAnalysis, rank: int, image: Path, folder: Path, spec: CropSpec, force: bool
) -> dict[str, Any]:
    stem = f"{rank:02d}_{Path(photo.file_name).stem}"
    files = [write_bytes_atomic(folder / f"{stem}.jpg", jpeg_bytes(overlay(image, photo)), force)]
    for j, piece in enumerate(crops(image, photo, spec)):
        files.append(write_bytes_atomic(folder / f"{stem}_crop{j:02d}.jpg", jpeg_bytes(piece),
                                        force))
    return {**photo.summary(), "rank": rank, "overlay": f"{folder.name}/{files[0].name}",
            "crops": [f"{folder.name}/{f.name}" for f in files[1:]]}


def write_analysis(
    gt: GroundTruth,
    detections: Detections,
    images_dir: str | Path,
    out_dir: str | Path,
    *,
    top_k: int = 5,
    score_thr: float = 0.3,
    bands: Sequence[SizeBand] | None = None,
    group_by: str | None = "colour",
    max_dets: int = 100,
    force: bool = False,
) -> AnalysisOutput:
    """Rank every photo, draw the ``top_k`` best and worst present in ``images_dir``."""
    images_dir, out = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: image folder not found")
    photos = analyze_photos(gt, detections, score_thr, group_by, max_dets)
    present = {p.image_id for p in photos if (images_dir / p.file_name).is_file()}
    on_disk = [p for p in photos if p.image_id in present]
    spec = CropSpec()
    entries: dict[str, list[dict[str, Any]]] = {"worst": [], "best": []}
    for kind, ranked in (("worst", rank_worst(on_disk)), ("best", rank_best(on_disk))):
        for rank, photo in enumerate(ranked[:top_k], start=1):
            entries[kind].append(_write_photo(photo, rank, images_dir / photo.file_name,
                                              out / kind, spec, force))
    worst_first = rank_worst(photos)
    result = evaluate(gt, detections, bands=bands, group_by=group_by, max_dets=max_dets)
    files = [
        write_bytes_atomic(out / "pr_curves.png", pr_curves_png(result.to_dict()), force),
        write_text_atomic(out / "photos.csv", _photos_csv(worst_first, present), force),
        write_json_atomic(out / "analysis.json", {
            "score_thr": score_thr, "top_k": top_k, "images_dir": str(images_dir),
            "photos_total": len(photos), "photos_present": len(present),
            "worst": entries["worst"], "best": entries["best"],
            "photos": [{**p.summary(), "present": p.image_id in present} for p in worst_first],
        }, force, indent=1),
    ]
    drawn = [out / f for kind in entries.values() for e in kind
             for f in [e["overlay"], *e["crops"]]]
    return AnalysisOutput(out, tuple(worst_first), len(present), tuple(files + drawn))
