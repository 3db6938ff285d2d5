"""Photo decoding shared by overlays, prediction and the service."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

_ORIENTATION_TAG = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def open_shrunk(
    path: str | Path, max_side: int | None, upright: bool = False
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode a photo as RGB with its long side at most ``max_side``; also its full size.

    A JPEG is decoded at a reduced scale when that suffices (``Image.draft``), so a small
    overlay of a 4608x3072 photo does not decode every pixel. ``upright`` applies the EXIF
    orientation; the full size returned is then the upright one.
    """
    with Image.open(path) as src:
        full = src.size
        if upright and src.getexif().get(_ORIENTATION_TAG, 1) in _TRANSPOSED:
            full = (full[1], full[0])
        if max_side is not None and max(full) > max_side:
            ratio = max_side / max(full)
            src.draft("RGB", (max(1, round(src.width * ratio)), max(1, round(src.height * ratio))))
        img = (ImageOps.exif_transpose(src) if upright else src).convert("RGB")
    if max_side is not None and max(img.size) > max_side:
        ratio = max_side / max(img.size)
        size = (max(1, round(img.width * ratio)), max(1, round(img.height * ratio)))
        img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return img, full
