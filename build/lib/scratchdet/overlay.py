"""The one overlay style: ``predict --overlays``, the report's gallery and the service.

It matches the operator page (``service/static/viewer.js``): kept boxes (score at or above the
verdict threshold) solid red, near-misses (below it, down to :data:`NEAR_FLOOR` times it, as
the page's ``threshold / 2``) dashed orange, boxes a person drew (operator-drawn misses, ground
truth) blue. The view is the part region plus a margin (:func:`view_window`; the whole photo
when the region is unknown), shrunk to ``max_side``. Each label sits on a filled background,
placed by :func:`place_labels` so that no two labels overlap.

Boxes are ``(x0, y0, x1, y1)`` in original photo pixels; canvas rectangles are integer
``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from scratchdet.imaging import Colour, open_shrunk, photo_size

Kind = Literal["kept", "near", "drawn"]
Rect = tuple[int, int, int, int]
Box = tuple[float, float, float, float]

KEPT: Colour = (255, 42, 42)  # viewer.js COLOURS.kept  #ff2a2a
NEAR: Colour = (255, 154, 31)  # viewer.js COLOURS.near  #ff9a1f
DRAWN: Colour = (42, 157, 255)  # viewer.js COLOURS.drawn #2a9dff
COLOURS: dict[str, Colour] = {"kept": KEPT, "near": NEAR, "drawn": DRAWN}
TEXT_COLOURS: dict[str, Colour] = {"kept": (255, 255, 255), "near": (0, 0, 0),
                                   "drawn": (255, 255, 255)}
#: Near-misses are drawn down to this fraction of the verdict threshold (the page's floor).
NEAR_FLOOR = 0.5
#: Margin around the part region, as a fraction of its longer side (the page's fitPart).
PART_MARGIN = 0.04
#: The longer side of an overlay, px.
MAX_SIDE = 1600


@dataclass(frozen=True)
class Mark:
    """One box to draw: where (original pixels), how (``kind``) and its label."""

    box: Box
    kind: Kind
    label: str = ""


def marks_at(boxes: Sequence[Sequence[float]], scores: Sequence[float], threshold: float,
             floor: float = NEAR_FLOOR) -> list[Mark]:
    """Kept boxes (``score >= threshold``) and near-misses (``floor * threshold <= score <
    threshold``), highest score first, each labelled with its score; the rest are dropped."""
    ranked = sorted(zip(scores, boxes, strict=True), key=lambda sb: -sb[0])
    marks = []
    for score, box in ranked:
        if score >= threshold:
            marks.append(Mark(_box(box), "kept", f"{score:.2f}"))
        elif score >= floor * threshold:
            marks.append(Mark(_box(box), "near", f"{score:.2f}"))
    return marks


def _box(box: Sequence[float]) -> Box:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (x0, y0, x1, y1)


def view_window(size: tuple[int, int], region: Sequence[float] | None,
                marks: Sequence[Mark] = (), margin: float = PART_MARGIN) -> Rect:
    """The part of a ``size = (width, height)`` photo an overlay shows: the ``region`` and
    every mark's box, each side widened by ``margin`` times the region's longer side, clipped
    to the photo; the whole photo when ``region`` is ``None``."""
    width, height = size
    if region is None:
        return (0, 0, width, height)
    x0, y0, x1, y1 = (float(v) for v in region)
    for mark in marks:
        x0, y0 = min(x0, mark.box[0]), min(y0, mark.box[1])
        x1, y1 = max(x1, mark.box[2]), max(y1, mark.box[3])
    pad = margin * max(region[2] - region[0], region[3] - region[1])
    return (max(0, math.floor(x0 - pad)), max(0, math.floor(y0 - pad)),
            min(width, math.ceil(x1 + pad)), min(height, math.ceil(y1 + pad)))


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]],
                 canvas: tuple[int, int], taken: Sequence[Rect] = (),
                 gap: int = 1) -> list[Rect | None]:
    """Label rectangles for ``boxes`` (canvas pixels), placed greedily in order.

    Each label of ``(width, height)`` starts at its box's left edge (kept inside the canvas)
    and goes above the box, else below it, else inside its top-left corner, the first of these
    inside the canvas and free of the labels placed before it and of ``taken``; when none is,
    the inside position moves down below whatever it overlaps until it is free. A label that
    would leave the canvas that way is not placed (``None``; its box is still drawn).
    """
    placed: list[Rect] = list(taken)
    out: list[Rect | None] = []
    cw, ch = canvas
    for (x0, y0, _, y1), (w, h) in zip(boxes, sizes, strict=True):
        x = max(0, min(x0, cw - w))
        found = None
        for y in (y0 - gap - h, y1 + gap, y0 + gap):
            rect = (x, y, x + w, y + h)
            if y >= 0 and y + h <= ch and not any(_overlaps(rect, r) for r in placed):
                found = rect
                break
        y = max(0, y0 + gap)
        while found is None and y + h <= ch:
            rect = (x, y, x + w, y + h)
            hits = [r for r in placed if _overlaps(rect, r)]
            if not hits:
                found = rect
            y = max(r[3] for r in hits) + gap if hits else y
        out.append(found)
        if found is not None:
            placed.append(found)
    return out


def _dashed_rectangle(draw: ImageDraw.ImageDraw, rect: Sequence[float], colour: Colour,
                      line: int) -> None:
    """A rectangle outline ``line`` px wide (inwards, as PIL's) in dashes of ``3 * line`` px
    with gaps of ``2 * line`` px (the page's 6/4 px dash at its 2 px line)."""
    x0, y0, x1, y1 = (round(v) for v in rect)
    on, period = 3 * line, 5 * line
    for start in range(x0, x1 + 1, period):
        end = min(start + on, x1 + 1) - 1
        draw.rectangle((start, y0, end, y0 + line - 1), fill=colour)
        draw.rectangle((start, y1 - line + 1, end, y1), fill=colour)
    for start in range(y0, y1 + 1, period):
        end = min(start + on, y1 + 1) - 1
        draw.rectangle((x0, start, x0 + line - 1, end), fill=colour)
        draw.rectangle((x1 - line + 1, start, x1, end), fill=colour)


def draw_marks(image: Image.Image, marks: Sequence[Mark], *, scale: float = 1.0,
               offset: tuple[float, float] = (0.0, 0.0), line: int = 2, font_size: int = 14,
               taken: Sequence[Rect] = ()) -> list[Rect | None]:
    """Draw ``marks`` on ``image`` in place; returns their label rectangles (see
    :func:`place_labels`; ``taken``: canvas areas labels must avoid, e.g. a title).

    A photo pixel ``(x, y)`` is drawn at ``((x - offset[0]) * scale, (y - offset[1]) *
    scale)``; each box is widened by ``line`` px so that a thin scratch is not hidden under
    its outline. Person-drawn boxes go first, then near-misses, then kept boxes (on top);
    labels are placed in the order of ``marks`` and drawn last.
    """
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    ox, oy = offset
    rects = []
    for mark in marks:
        x0, y0, x1, y1 = mark.box
        rects.append((math.floor((x0 - ox) * scale) - line, math.floor((y0 - oy) * scale) - line,
                      math.ceil((x1 - ox) * scale) + line, math.ceil((y1 - oy) * scale) + line))
    for kind in ("drawn", "near", "kept"):
        for mark, rect in zip(marks, rects, strict=True):
            if mark.kind == kind and kind == "near":
                _dashed_rectangle(draw, rect, NEAR, line)
            elif mark.kind == kind:
                draw.rectangle(rect, outline=COLOURS[kind], width=line)
    sizes = [_text_size(font, m.label) if m.label else (0, 0) for m in marks]
    labelled = [k for k, m in enumerate(marks) if m.label]
    spots = place_labels([rects[k] for k in labelled], [sizes[k] for k in labelled], image.size,
                         taken)
    out: list[Rect | None] = [None] * len(marks)
    for k, spot in zip(labelled, spots, strict=True):
        out[k] = spot
        if spot is not None:
            kind = marks[k].kind
            draw.rectangle((spot[0], spot[1], spot[2] - 1, spot[3] - 1), fill=COLOURS[kind])
            draw.text((spot[0] + 2, spot[1] + 1), marks[k].label, fill=TEXT_COLOURS[kind],
                      font=font)
    return out


def _text_size(font: ImageFont.ImageFont | ImageFont.FreeTypeFont, text: str) -> tuple[int, int]:
    """A label's box: the text's extent plus 2 px of padding left and right, 1 px above and
    below."""
    right, bottom = font.getbbox(text)[2:]
    return (math.ceil(right) + 4, math.ceil(bottom) + 2)


def _decode_window(photo: str | Path | Image.Image, window: Rect, size: tuple[int, int],
                   full: tuple[int, int], upright: bool) -> Image.Image:
    """``window`` of the photo (full-size pixels) as an RGB image of exactly ``size``; a JPEG
    is decoded at a reduced scale when that suffices."""
    ww = window[2] - window[0]
    if isinstance(photo, Image.Image):
        img, ratio = photo.convert("RGB"), 1.0
    else:
        shrink = size[0] / ww
        max_side = None if shrink >= 1 else math.ceil(max(full) * shrink)
        img, _ = open_shrunk(photo, max_side, upright=upright)
        ratio = img.width / full[0]
    piece = img.crop(tuple(round(v * ratio) for v in window))
    if piece.size != size:
        piece = piece.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return piece


def render(photo: str | Path | Image.Image, marks: Sequence[Mark],
           region: Sequence[float] | None = None, *, max_side: int | None = MAX_SIDE,
           title: str | None = None, upright: bool = False,
           margin: float = PART_MARGIN) -> Image.Image:
    """The overlay of one photo: :func:`view_window` of it shrunk so that its longer side is
    at most ``max_side`` (``None``: full resolution), the ``marks`` drawn, and ``title`` on a
    dark band at the top when given. ``upright``: apply the photo's EXIF orientation (boxes
    are then in upright pixels).

    Raises:
        ValueError: the photo cannot be decoded (names the file).
    """
    full = photo.size if isinstance(photo, Image.Image) else photo_size(photo, upright)
    window = view_window(full, region, marks, margin)
    ww, wh = window[2] - window[0], window[3] - window[1]
    shrink = 1.0 if max_side is None else min(1.0, max_side / max(ww, wh))
    size = (max(1, round(ww * shrink)), max(1, round(wh * shrink)))
    img = _decode_window(photo, window, size, full, upright)
    line = max(2, round(max(size) / 600))
    font_size = max(12, round(max(size) / 100))
    taken: list[Rect] = []
    if title:
        band = (0, 0, size[0], font_size + 6)
        ImageDraw.Draw(img).rectangle((0, 0, band[2] - 1, band[3] - 1), fill=(0, 0, 0))
        ImageDraw.Draw(img).text((4, 3), title, fill=(255, 255, 255),
                                 font=ImageFont.load_default(size=font_size))
        taken.append(band)
    draw_marks(img, marks, scale=size[0] / ww, offset=window[:2], line=line,
               font_size=font_size, taken=taken)
    return img
