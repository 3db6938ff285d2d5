"""Photo handling for the service: safe decoding, atomic storage and overlays (PIL only)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from scratchdet.imaging import draw_boxes, open_shrunk
from scratchdet.io import write_bytes_atomic
from scratchdet.service.errors import ServiceError

OVERLAY_COLOUR = (255, 40, 40)


def decode_photo(
    data: bytes, formats: tuple[str, ...], max_pixels: int, name: str
) -> tuple[Image.Image, str]:
    """Decode an uploaded photo after checking its header: refuse bombs before decoding.

    Returns the upright (EXIF-rotated) RGB photo and its PIL format name. A multi-picture
    JPEG (PIL format "MPO", written by many cameras) counts as a JPEG: its first frame is used.

    Raises:
        ServiceError: 413 when width*height exceeds ``max_pixels``; 422 when the bytes are not
            an image of one of ``formats`` (PIL names) or are corrupt/truncated.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(formats))
            width, height = image.size
            if width * height > max_pixels:
                raise ServiceError(
                    413, "too_many_pixels",
                    f"photo '{name}' is {width}x{height} = {width * height} pixels; "
                    f"the limit is {max_pixels} pixels",
                )
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)  # MPO: the first frame is the main picture
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ServiceError(
            413, "too_many_pixels", f"photo '{name}' refused as a decompression bomb: {error}"
        ) from error
    except UnidentifiedImageError as error:
        raise ServiceError(
            422, "not_an_image",
            f"'{name}' is not a {' or '.join(formats)} image (content not recognised)",
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ServiceError(
            422, "corrupt_image", f"photo '{name}' is corrupt or truncated: {error}"
        ) from error
    found = "JPEG" if image.format == "MPO" else (image.format or formats[0])
    photo = ImageOps.exif_transpose(image)
    return (photo.convert("RGB") if photo.mode != "RGB" else photo), found


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file in ``path``'s folder, fsync, then rename over ``path``."""
    write_bytes_atomic(path, data, force=True)


def draw_overlay(
    image: Image.Image, boxes: Sequence[Sequence[float]], scores: Sequence[float], scale: float
) -> Image.Image:
    """Draw every box (``scale`` maps box pixels to ``image`` pixels) and its score, in place."""
    line = max(2, round(max(image.size) / 600))
    return draw_boxes(image, boxes, OVERLAY_COLOUR, [f"{s:.2f}" for s in scores], scale=scale,
                      width=line, pad=line * 2)


def render_overlay(
    path: Path,
    original_width: int,
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float],
    max_side: int | None = None,
    fmt: str = "jpeg",
) -> bytes:
    """A stored photo (upright, shrunk to ``max_side``) with its boxes, encoded as ``fmt``.

    ``original_width`` is the upright photo's width, in which the boxes are given. A JPEG is
    decoded at a reduced scale when that suffices (``Image.draft``), so a small overlay of a
    4608x3072 photo does not decode every pixel.
    """
    upright, _ = open_shrunk(path, max_side, upright=True)
    return encode_image(draw_overlay(upright, boxes, scores, upright.width / original_width), fmt)


def encode_image(image: Image.Image, fmt: str) -> bytes:
    """JPEG (quality 90) or PNG bytes."""
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=90)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
