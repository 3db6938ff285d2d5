"""Batch prediction on photos: a model file over files, folders or globs.

:func:`scratchdet.data.photos.collect_photos` finds the photos, :mod:`scratchdet.inference.load`
builds the predictor the model's spec asks for, :func:`predict_photos` runs it over them
(unreadable photos are skipped and counted), and :func:`write_outputs` writes

- ``results.bbox.json``: COCO results (``image_id``, ``category_id``, ``bbox`` [x, y, w, h] in
  original pixels, ``score``);
- ``image_ids.json``: file name -> image id (from the ``--gt`` COCO file when given, matched by
  file name, else 1, 2, ... in photo order);
- ``verdicts.csv``: one row per photo: the verdict (:func:`scratchdet.structures.verdict`),
  max score, boxes at the threshold, timings in ms.

:func:`draw_overlay` draws the photo's kept boxes and near-misses on its part region
(:mod:`scratchdet.overlay`, the style of the report and the service).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from scratchdet import overlay
from scratchdet.imaging import xywh_to_xyxy
from scratchdet.inference.load import LoadedModel, build_predictor, load_model
from scratchdet.inference.predictor import TiledPrediction, TiledPredictor
from scratchdet.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from scratchdet.structures import DEFAULT_MAX_SINGLE, Detections, Verdict, verdict

TIMING_KEYS = ("decode", "localise", "model", "merge", "total")
VERDICT_FIELDS = ("file", "verdict", "max_score", "n_boxes", "image_id", "tiles",
                  *(f"{k}_ms" for k in TIMING_KEYS))


@dataclass
class PhotoResult:
    """One photo's outcome (``error`` set when it could not be predicted); ``region``: the
    part region ``(x0, y0, x1, y1)`` in original pixels, when the predictor found one."""

    path: Path
    image_id: int
    detections: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    tiles: int = 0
    error: str | None = None
    region: tuple[int, int, int, int] | None = None

    def max_score(self) -> float:
        return max((d["score"] for d in self.detections), default=0.0)

    def boxes_at(self, threshold: float) -> list[dict[str, Any]]:
        return [d for d in self.detections if d["score"] >= threshold]

    def verdict(self, threshold: float) -> Verdict:
        return verdict(self.max_score(), threshold)


def image_ids(photos: Sequence[Path], gt: str | Path | None = None) -> dict[str, int]:
    """File name -> image id: from the COCO file ``gt`` (by file name), else 1, 2, ...

    Raises:
        ValueError: ``gt`` is not a COCO file with ``images``, or a photo is not listed in it.
    """
    if gt is None:
        return {p.name: i for i, p in enumerate(photos, start=1)}
    path = Path(gt)
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
        by_name = {Path(im["file_name"]).name: int(im["id"]) for im in images}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: ground-truth COCO file not found") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: expected a COCO json with images[{{id, file_name}}] "
                         f"({type(err).__name__}: {err})") from None
    missing = [p.name for p in photos if p.name not in by_name]
    if missing:
        raise ValueError(f"{path}: {len(missing)} photo(s) not listed in its images, "
                         f"e.g. {missing[:3]}; expected every photo's file name there")
    return {p.name: by_name[p.name] for p in photos}


def predict_photos(
    predictor: Any,
    photos: Sequence[Path],
    ids: Mapping[str, int],
    category_ids: Sequence[int],
    on_photo: Callable[[PhotoResult], None] | None = None,
) -> list[PhotoResult]:
    """Predict every photo with a :class:`TiledPredictor` or a batched one (anything with
    ``predict_many``, e.g. :func:`batched_on_gpu`'s); an unreadable one gets ``error`` set
    and the run goes on."""
    results = []
    for photo, pred in _predictions(predictor, photos):
        res = PhotoResult(photo, ids[photo.name])
        if isinstance(pred, Exception):
            res.error = str(pred) if str(photo) in str(pred) else f"{photo}: {pred}"
        else:
            res.detections = coco_results(pred.detections, res.image_id, category_ids)
            res.timings, res.tiles = dict(pred.timings), len(pred.tiles)
            if not pred.region.fallback:
                res.region = pred.region.box
        results.append(res)
        if on_photo is not None:
            on_photo(res)
    return results


def _predictions(predictor: Any, photos: Sequence[Path]
                 ) -> Iterator[tuple[Path, TiledPrediction | Exception]]:
    many = getattr(predictor, "predict_many", None)
    if many is not None:
        yield from many(photos)
        return
    for photo in photos:
        try:
            yield photo, predictor.predict(photo)
        except (ValueError, OSError) as err:
            yield photo, err


def batched_on_gpu(model: LoadedModel, predictor: TiledPredictor, batch_size: int,
                   autotune: bool = False) -> Any:
    """``predictor`` as a batched one (:class:`scratchdet.inference.gpu_batch.BatchedPredictor`:
    decode and localisation on the GPU, several photos per model call, the same detections)
    when ``model`` runs with PyTorch on a CUDA device and ``predictor`` allows it (no flips,
    scale 1, tiles); else ``predictor`` itself. ``autotune``: cuDNN tunes per input-shape
    bucket (worth its minute from about a thousand photos)."""
    module = getattr(model.detector, "model", None)
    if (model.runtime != "torch" or not str(model.device).startswith("cuda")
            or predictor.tta or predictor.scale != 1.0 or predictor.max_side is not None
            or module is None):
        return predictor
    from scratchdet.inference.gpu_batch import BatchedPredictor

    return BatchedPredictor(predictor, module, model.device, batch_size,
                            locators=min(8, (os.cpu_count() or 2) // 2), autotune=autotune)


def predict_for_evaluation(checkpoint: str | Path, photos: Sequence[Path],
                           ids: Mapping[str, int], out_dir: str | Path,
                           max_single: int | None = DEFAULT_MAX_SINGLE,
                           tta: tuple[str, ...] = (), scale: float = 1.0,
                           nested: tuple[str, float, float] | None = None,
                           red_polarity: bool | None = None) -> list[PhotoResult]:
    """Predict ``photos`` as validation does (torch, on the GPU when there is one, or ONNX
    Runtime for an exported ``.onnx``; scores from 0; the default fast path unless
    ``max_single`` says otherwise; red parts as the spec says unless ``red_polarity``) and
    write the outputs (COCO results, verdicts at 0.5) into ``out_dir``, overwriting."""
    import torch

    onnx = Path(checkpoint).suffix == ".onnx"  # ONNX Runtime runs on the CPU here
    device = "cuda" if torch.cuda.is_available() and not onnx else "cpu"
    loaded = load_model(checkpoint, "onnx" if onnx else "torch", device)
    predictor = build_predictor(loaded, batch_size=2, score_threshold=0.0,
                                max_single=max_single, tta=tta, scale=scale, nested=nested,
                                red_polarity=red_polarity)
    results = predict_photos(predictor, photos, ids, loaded.spec.category_ids)
    write_outputs(results, ids, out_dir, threshold=0.5, force=True)
    return results


def coco_results(dets: Detections, image_id: int,
                 category_ids: Sequence[int]) -> list[dict[str, Any]]:
    """COCO results (``[x, y, w, h]`` rounded to 0.01 px, score to 1e-5) of one photo."""
    out = []
    for (x1, y1, x2, y2), score, label in zip(dets.boxes.tolist(), dets.scores.tolist(),
                                              dets.labels.tolist(), strict=True):
        out.append({"image_id": image_id, "category_id": int(category_ids[int(label) - 1]),
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(float(score), 5)})
    return out


def verdict_rows(results: Sequence[PhotoResult], threshold: float) -> list[dict[str, Any]]:
    """``verdicts.csv`` rows for the photos that were predicted."""
    rows = []
    for r in results:
        if r.error is not None:
            continue
        row: dict[str, Any] = {
            "file": r.path.name, "verdict": r.verdict(threshold),
            "max_score": f"{r.max_score():.4f}", "n_boxes": len(r.boxes_at(threshold)),
            "image_id": r.image_id, "tiles": r.tiles,
        }
        row.update({f"{k}_ms": f"{1000 * r.timings.get(k, 0.0):.1f}" for k in TIMING_KEYS})
        rows.append(row)
    return rows


def write_outputs(results: Sequence[PhotoResult], ids: Mapping[str, int], out_dir: str | Path,
                  threshold: float, force: bool = False) -> list[Path]:
    """Write ``results.bbox.json``, ``image_ids.json`` and ``verdicts.csv`` into ``out_dir``."""
    out = Path(out_dir)
    dets = [d for r in results for d in r.detections]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=VERDICT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(verdict_rows(results, threshold))
    return [
        write_json_atomic(out / "results.bbox.json", dets, force),
        write_json_atomic(out / "image_ids.json", dict(ids), force, indent=1),
        write_text_atomic(out / "verdicts.csv", buf.getvalue(), force),
    ]


def draw_overlay(result: PhotoResult, threshold: float,
                 max_side: int = overlay.MAX_SIDE) -> Image.Image:
    """The photo's part region (the whole photo when unknown) shrunk to ``max_side``, with its
    kept boxes (score >= ``threshold``) and near-misses drawn (:mod:`scratchdet.overlay`)."""
    scores = [d["score"] for d in result.detections]
    boxes = [xywh_to_xyxy(d["bbox"]) for d in result.detections]
    title = (f"{result.path.name}: {result.verdict(threshold).upper()} "
             f"(max {result.max_score():.2f}, threshold {threshold})")
    return overlay.render(result.path, overlay.marks_at(boxes, scores, threshold),
                          result.region, max_side=max_side, title=title)


def write_overlays(results: Sequence[PhotoResult], out_dir: str | Path, threshold: float,
                   max_side: int = overlay.MAX_SIDE, force: bool = False) -> list[Path]:
    """One ``<stem>.jpg`` overlay per predicted photo in ``out_dir``."""
    files = []
    for r in results:
        if r.error is None:
            buf = io.BytesIO()
            draw_overlay(r, threshold, max_side).save(buf, "JPEG", quality=85)
            files.append(write_bytes_atomic(Path(out_dir) / f"{r.path.stem}.jpg",
                                            buf.getvalue(), force))
    return files


def summary(results: Sequence[PhotoResult], threshold: float) -> dict[str, Any]:
    """Counts and mean time per photo of a run."""
    ok = [r for r in results if r.error is None]
    total = [r.timings["total"] for r in ok if "total" in r.timings]
    return {
        "photos": len(results), "predicted": len(ok), "failed_to_read": len(results) - len(ok),
        "fail_verdicts": sum(r.verdict(threshold) == "fail" for r in ok),
        "s_per_photo": sum(total) / len(total) if total else None,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
