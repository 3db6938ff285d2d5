"""Overlays and full-resolution crops of analysed photos (Pillow).

Colours: ground truth green (thicker line), matched detections blue, false boxes red;
each detection is labelled with its score. A scratch is a few dozen px in a 4608x3072
photo, so every box also gets a crop at full resolution with some context around it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from scratchdet.evaluation.analysis import BoxView, PhotoAnalysis
from scratchdet.imaging import draw_boxes, open_shrunk, xywh_to_xyxy

GT_COLOUR = (0, 200, 0)
MATCHED_COLOUR = (30, 144, 255)
FALSE_COLOUR = (255, 40, 40)


@dataclass(frozen=True)
class CropSpec:
    """Context around each box: ``margin`` px on each side, at least ``min_side`` px."""

    margin: int = 64
    min_side: int = 192
    max_crops: int = 12


def _draw_boxes(
    image: Image.Image, photo: PhotoAnalysis, scale: float, offset: tuple[int, int],
    width: int, font_size: int,
) -> None:
    gt = [xywh_to_xyxy(g.bbox) for g in photo.gt]
    draw_boxes(image, gt, GT_COLOUR, scale=scale, offset=offset, width=width + 1)
    draw_boxes(image, [xywh_to_xyxy(d.bbox) for d in photo.detections],
               [MATCHED_COLOUR if d.matched else FALSE_COLOUR for d in photo.detections],
               [f"{d.score:.2f}" for d in photo.detections], scale=scale, offset=offset,
               width=width, font_size=font_size)


def _legend(draw: ImageDraw.ImageDraw, photo: PhotoAnalysis, width: int, font_size: int) -> None:
    ap = "n/a (clean photo)" if photo.ap50 is None else f"{photo.ap50:.3f}"
    text = (f"{photo.file_name}  AP50 {ap}  misses {photo.misses}  false boxes "
            f"{photo.false_boxes}  | GT green, matched blue, false red")
    draw.rectangle((0, 0, width, font_size + 8), fill=(0, 0, 0))
    draw.text((4, 3), text, fill=(255, 255, 255), font=ImageFont.load_default(size=font_size))


def overlay(path: Path, photo: PhotoAnalysis, max_side: int = 1600) -> Image.Image:
    """The whole photo, downscaled to ``max_side``, with every box drawn."""
    img, (full_w, _) = open_shrunk(path, max_side)
    scale = img.width / full_w
    _draw_boxes(img, photo, scale, (0, 0), width=2, font_size=16)
    _legend(ImageDraw.Draw(img), photo, img.width, 16)
    return img


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
    out = []
    for window in crop_windows(boxes, img.size, spec):
        piece = img.crop(window)
        _draw_boxes(piece, photo, 1.0, window[:2], width=2, font_size=14)
        out.append(piece)
    return out


def jpeg_bytes(img: Image.Image, quality: int = 88) -> bytes:
    """Encode as JPEG."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
