"""Photo decoding shared by prediction, evaluation and the service (boxes are drawn by
:mod:`scratchdet.overlay`).

Both decoders use the JPEG draft mode (decode at 1/2, 1/4 or 1/8 scale straight from the
DCT) whenever a reduced photo suffices, so a small view of a 4608x3072 photo does not decode
every pixel.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

Colour = tuple[int, int, int]

_ORIENTATION_TAG = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def decode_draft(
    path: str | Path, size: tuple[int, int] | None = None, factor: int = 1
) -> tuple[Image.Image, tuple[int, int]]:
    """RGB decode of ``path`` and its full ``(width, height)``; a JPEG is decoded at the
    smallest 1/2, 1/4 or 1/8 scale still at least ``size`` (default: the full size divided
    by ``factor``), by PIL's draft mode, without a resize after it."""
    with Image.open(path) as src:
        full = src.size
        src.draft("RGB", size or (full[0] // factor, full[1] // factor))
        return src.convert("RGB"), full


@contextmanager
def _readable(path: str | Path) -> Iterator[None]:
    """Turn any failure to decode ``path`` into ``ValueError("<path>: ...")``: unreadable or
    truncated files, and decompression bombs (PIL's ``DecompressionBombWarning`` is raised
    as an error too: a photo over ``Image.MAX_IMAGE_PIXELS`` is refused, not decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f"{path}: refused as a possible decompression bomb ({err})") from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, EOFError, ...
        raise ValueError(f"{path}: cannot read as an image ({err})") from None


def open_shrunk(
    path: str | Path, max_side: int | None, upright: bool = False
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode a photo as RGB with its long side at most ``max_side``; also its full size.

    A JPEG is decoded at a reduced scale when that suffices (``Image.draft``), so a small
    overlay of a 4608x3072 photo does not decode every pixel. ``upright`` applies the EXIF
    orientation; the full size returned is then the upright one.

    Raises:
        ValueError: the file cannot be decoded, or is a decompression bomb (names the file).
    """
    with _readable(path), Image.open(path) as src:
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


def decode_at_scale(
    photo: str | Path | Image.Image, scale: float = 1.0, max_side: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """The RGB photo decoded at ``scale`` and its original ``(width, height)``.

    With ``max_side`` the scale is ``min(1, max_side / long side)`` of each photo instead.

    Raises:
        ValueError: the file cannot be read as an image, or is a decompression bomb (more
            pixels than PIL's ``Image.MAX_IMAGE_PIXELS``); the message names the file.
    """
    if isinstance(photo, Image.Image):
        im, size = photo, photo.size
        if max_side is not None:
            scale = min(1.0, max_side / max(size))
    else:
        with _readable(photo), Image.open(photo) as im:  # the file is closed on any error
            size = im.size
            if max_side is not None:
                scale = min(1.0, max_side / max(size))
            if scale < 1:  # JPEG: decode at the smallest 1/2^k scale >= the requested size
                im.draft("RGB", (math.ceil(size[0] * scale), math.ceil(size[1] * scale)))
            im.load()  # decodes: the pixels stay usable once the file is closed
    im = im if im.mode == "RGB" else im.convert("RGB")
    target = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    if im.size != target:
        im = im.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return im, size


def photo_size(path: str | Path, upright: bool = False) -> tuple[int, int]:
    """A photo's ``(width, height)`` from its header (no decode); ``upright``: as the EXIF
    orientation turns it.

    Raises:
        ValueError: the file cannot be read as an image (names the file).
    """
    with _readable(path), Image.open(path) as src:
        size = src.size
        if upright and src.getexif().get(_ORIENTATION_TAG, 1) in _TRANSPOSED:
            return (size[1], size[0])
        return size


def xywh_to_xyxy(box: Sequence[float]) -> tuple[float, float, float, float]:
    """COCO ``[x, y, w, h]`` -> ``(x0, y0, x1, y1)``."""
    x, y, w, h = box
    return (x, y, x + w, y + h)


def cut_crops(image: Image.Image, windows: Sequence[Sequence[int]], size: int) -> np.ndarray:
    """``uint8 [N, size, size, 3]`` RGB crops of ``image`` at integer ``windows`` (x0, y0, x1, y1,
    e.g. from :func:`scratchdet.geometry.crops.crop_windows`), each resized to ``size`` square
    (bilinear; a window larger than ``size`` is reduced with antialiasing)."""
    out = np.empty((len(windows), size, size, 3), dtype=np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(windows):
        crop = image.crop((int(x0), int(y0), int(x1), int(y1)))
        out[k] = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0))
    return out


def white_polarity(image: Image.Image) -> Image.Image:
    """A red part shown as the white parts are: 255 - green, in all three channels.

    On red paint a scratch is lighter than the paint and moulded grooves darker; on white
    parts a scratch is darker. The green channel separates red paint (low) from a bare
    scratch (high); inverted, the paint turns light grey, scratches dark and grooves light.
    """
    return Image.fromarray(white_polarity_array(np.asarray(image.convert("RGB"))))


def white_polarity_array(pixels: np.ndarray) -> np.ndarray:
    """:func:`white_polarity` of a ``uint8 [H, W, 3]`` RGB array (a new array)."""
    green = 255 - pixels[..., 1]
    return np.repeat(green[..., None], 3, axis=2)
