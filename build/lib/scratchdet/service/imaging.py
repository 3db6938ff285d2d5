"""Photo handling for the service: safe decoding, atomic storage and overlays (PIL only)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from scratchdet import overlay
from scratchdet.io import write_bytes_atomic
from scratchdet.service.errors import ServiceError


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


def render_overlay(
    path: Path,
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float],
    threshold: float,
    below_boxes: Sequence[Sequence[float]] = (),
    below_scores: Sequence[float] = (),
    part_box: Sequence[float] | None = None,
    max_side: int | None = None,
    fmt: str = "jpeg",
) -> bytes:
    """A stored photo (upright) with its kept boxes and near-misses, encoded as ``fmt``, in
    the style of the page and of ``predict --overlays`` (:mod:`scratchdet.overlay`).

    The view is the part region (``part_box``) with a margin, or the whole photo when the row
    has none, shrunk to ``max_side``. Boxes are in upright original pixels. A JPEG is decoded
    at a reduced scale when that suffices (``Image.draft``).
    """
    marks = overlay.marks_at([*boxes, *below_boxes], [*scores, *below_scores], threshold)
    image = overlay.render(path, marks, part_box, max_side=max_side, upright=True)
    return encode_image(image, fmt)


def encode_image(image: Image.Image, fmt: str) -> bytes:
    """JPEG (quality 90) or PNG bytes."""
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=90)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
