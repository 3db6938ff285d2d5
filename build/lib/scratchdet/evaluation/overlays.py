"""Overlays and full-resolution crops of analysed photos, in the one overlay style
(:mod:`scratchdet.overlay`, as ``predict --overlays`` and the operator page draw them).

Ground-truth boxes blue (boxes a person drew, like the operator's on the page), detections at
or above the threshold (``score_thr``) solid red, near-misses under it dashed orange; each
detection is labelled with its score, and "false" when it matches no ground-truth box. The
overlay shows the part region (found from the photo as the predictor finds it) with a margin.
A scratch is a few dozen px in a 4608x3072 photo, so every box also gets a crop at full
resolution with some context around it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from scratchdet import overlay as style
from scratchdet.evaluation.analysis import BoxView, PhotoAnalysis
from scratchdet.geometry.localize import locate_part_in_file
from scratchdet.imaging import xywh_to_xyxy


@dataclass(frozen=True)
class CropSpec:
    """Context around each box: ``margin`` px on each side, at least ``min_side`` px."""

    margin: int = 64
    min_side: int = 192
    max_crops: int = 12


def photo_marks(photo: PhotoAnalysis) -> list[style.Mark]:
    """The boxes of one analysed photo to draw: detections (highest score first), then
    near-misses, then ground truth (unlabelled)."""

    def label(d: BoxView) -> str:
        return f"{d.score:.2f}" + ("" if d.matched else " false")

    ranked = sorted(photo.detections, key=lambda d: -(d.score or 0.0))
    near = sorted(photo.near, key=lambda d: -(d.score or 0.0))
    return [*(style.Mark(xywh_to_xyxy(d.bbox), "kept", label(d)) for d in ranked),
            *(style.Mark(xywh_to_xyxy(d.bbox), "near", label(d)) for d in near),
            *(style.Mark(xywh_to_xyxy(g.bbox), "drawn") for g in photo.gt)]


def _title(photo: PhotoAnalysis) -> str:
    ap = "n/a (clean photo)" if photo.ap50 is None else f"{photo.ap50:.3f}"
    return (f"{photo.file_name}  AP50 {ap}  misses {photo.misses}  false boxes "
            f"{photo.false_boxes}  | truth blue, detections red, near-misses dashed orange")


def overlay(path: Path, photo: PhotoAnalysis, max_side: int = style.MAX_SIDE) -> Image.Image:
    """The part region of the photo (the whole photo when none is found) shrunk to
    ``max_side``, with every box drawn."""
    region = locate_part_in_file(path)
    return style.render(path, photo_marks(photo), None if region.fallback else region.box,
                        max_side=max_side, title=_title(photo))


def crop_windows(
    boxes: Sequence[BoxView], size: tuple[int, int], spec: CropSpec
) -> list[tuple[int, int, int, int]]:
    """Full-resolution windows ``(x0, y0, x1, y1)`` around ``boxes``, clipped to the photo.

    At most ``spec.max_crops`` windows, in the order of ``boxes``; a box lying wholly inside
    an earlier window gets none (every box is drawn on every crop, so it shows there).
    """
    windows: list[tuple[int, int, int, int]] = []
    for box in boxes:
        if len(windows) >= spec.max_crops:
            break
        x, y, w, h = box.bbox
        if any(x0 <= x and y0 <= y and x + w <= x1 and y + h <= y1
               for x0, y0, x1, y1 in windows):
            continue
        cx, cy = x + w / 2, y + h / 2
        half_w = max(w / 2 + spec.margin, spec.min_side / 2)
        half_h = max(h / 2 + spec.margin, spec.min_side / 2)
        x0, y0 = max(0, int(cx - half_w)), max(0, int(cy - half_h))
        x1, y1 = min(size[0], int(cx + half_w + 1)), min(size[1], int(cy + half_h + 1))
        windows.append((x0, y0, x1, y1))
    return windows


def crops(path: Path, photo: PhotoAnalysis, spec: CropSpec = CropSpec()) -> list[Image.Image]:
    """One full-resolution crop per GT box and per false box, every box drawn on it.

    Matched detections lie on their GT box, so they show in that box's crop.
    """
    with Image.open(path) as src:
        img = src.convert("RGB")
    boxes = [*photo.gt, *(d for d in photo.detections if not d.matched)]
    marks = photo_marks(photo)
    out = []
    for window in crop_windows(boxes, img.size, spec):
        piece = img.crop(window)
        style.draw_marks(piece, marks, offset=window[:2], line=2, font_size=14)
        out.append(piece)
    return out


def jpeg_bytes(img: Image.Image, quality: int = 88) -> bytes:
    """Encode as JPEG."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
