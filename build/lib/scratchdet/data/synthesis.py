"""Scratch copy-paste synthesis: real scratches cut from their boxes, pasted on clean paint.

Cutting (:func:`cut_scratch`): the local background under a scratch box is a plane per colour
channel fitted to a ring of ``ring`` px around the box; the scratch is the *difference*
``delta = box pixels - background``. Its soft mask ``alpha`` rises from 0 at twice the ring's
noise to 1 at the 95th percentile of ``|delta|`` (luminance) and is feathered to 0 over
``feather`` px at the box border, so a paste leaves no seam.

Pasting (:func:`paste_scratch`): ``out = target + gain * alpha * delta`` inside the pasted box
only; the difference, not the colour, is transferred, so a scratch cut from a white part
lands on a red part with the red part's shading. ``grey=True`` replaces ``delta`` by its
luminance on all channels (a colourless tint). Patches are rotated by 90-degree steps,
flipped and scaled first (:func:`transform_patch`); the pasted box is the patch footprint.

Polarity: on white parts a scratch is a dark groove, on red parts paint is scraped off to a
light primer and the scratch shows *lighter* than the paint (see the sample's red photos).
A patch pasted on a part whose colour is in ``bright_colours`` while its source colour is not
(or the other way round) is pasted with its luminance difference inverted and colourless
(``invert=True`` in :func:`paste_scratch`), so white-part scratches teach the model what a
red-part scratch looks like. Same-colour pastes and unknown colours keep their polarity.
With ``negative_probability`` such a paste instead keeps its source polarity and gets no box:
a dark line on a red part is then a background example (the sample's clean red parts carry
moulded dark grooves that otherwise draw confident false boxes).

Placement (:func:`paste_random`): a position is drawn until the footprint lies on the part
mask (eroded, i.e. away from the part edge) and clear of every existing box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field

from scratchdet.config import StrictConfig


class SyntheticSamples(Protocol):
    """What :func:`preview_synthesis` reads (``scratchdet.data.tiles.TileDataset`` is one):
    ``sample(i)`` has ``image`` (uint8 HxWx3), ``boxes`` [N, 4] and ``synthetic`` bool[N]."""

    synthesis: Any

    def __len__(self) -> int: ...

    def sample(self, index: int) -> Any: ...


class SynthesisConfig(StrictConfig):
    """Copy-paste settings (used by ``scratchdet.data.tiles.TileDataset``)."""

    enabled: bool | None = Field(None, description="None: on when < auto_below scratched photos")
    auto_below: int = Field(200, ge=0, description="scratched photos under which it is on")
    probability: float = Field(0.5, ge=0, le=1, description="chance a tile gets pastes")
    max_per_tile: int = Field(3, ge=1, description="pastes per tile: 1..max_per_tile")
    scale_range: tuple[float, float] = (0.7, 1.4)
    gain_range: tuple[float, float] = (0.7, 1.3)
    grey_probability: float = Field(0.3, ge=0, le=1, description="paste the luminance only")
    ring: int = Field(8, ge=2, description="px around a box used to fit its background")
    feather: int = Field(3, ge=0, description="px over which alpha fades at the box border")
    attempts: int = Field(20, ge=1, description="placement tries per paste")
    negative_probability: float = Field(
        0.0, ge=0, le=1, description="chance that a paste which would be inverted keeps its "
        "source polarity and is left unlabelled (a background example)")
    clip_polarity: bool = Field(
        False, description="labelled pastes only lighten the paint of bright_colours parts and "
        "only darken other known colours: what a cut box holds of the opposite sign (moulded "
        "grooves, rib highlights) is left out")
    bright_colours: list[str] = Field(
        default_factory=lambda: ["red"],
        description="part colours whose scratches are lighter than the paint; pastes between "
        "such a colour and another are inverted ([] switches this off)")

    def active(self, scratched_photos: int) -> bool:
        """Whether synthesis runs for a training set with ``scratched_photos`` scratched."""
        return self.enabled if self.enabled is not None else scratched_photos < self.auto_below


@dataclass(frozen=True)
class ScratchPatch:
    """A cut scratch: ``delta`` float32[h, w, 3] (pixels minus background), ``alpha`` [h, w]."""

    delta: np.ndarray
    alpha: np.ndarray
    source: str = ""
    category_id: int = 1
    colour: str = ""  # part colour of the source photo ("" = unknown)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.alpha.shape[1], self.alpha.shape[0]


def _ring_plane(crop: np.ndarray, inner: tuple[int, int, int, int]) -> tuple[np.ndarray, float]:
    """Per-channel plane fitted to ``crop`` outside ``inner``; (background of inner, noise)."""
    h, w = crop.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ring = np.ones((h, w), dtype=bool)
    x0, y0, x1, y1 = inner
    ring[y0:y1, x0:x1] = False
    design = np.stack([np.ones(h * w), xx.ravel() / w, yy.ravel() / h], axis=1)
    values = crop.reshape(-1, 3).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design[ring.ravel()], values[ring.ravel()], rcond=None)
    background = (design @ coef).reshape(h, w, 3)
    resid = (values - design @ coef).reshape(h, w, 3).mean(axis=2)[ring]
    noise = float(1.4826 * np.median(np.abs(resid - np.median(resid)))) + 0.5
    return background[y0:y1, x0:x1], noise


def _feather(h: int, w: int, px: int) -> np.ndarray:
    if px <= 0:
        return np.ones((h, w), dtype=np.float32)
    ry = np.minimum(np.arange(h), np.arange(h)[::-1]) + 0.5
    rx = np.minimum(np.arange(w), np.arange(w)[::-1]) + 0.5
    return np.clip(np.minimum.outer(ry, rx) / px, 0, 1).astype(np.float32)


def cut_scratch(
    image: np.ndarray,
    box: Sequence[float],
    ring: int = 8,
    feather: int = 3,
    source: str = "",
    category_id: int = 1,
    colour: str = "",
) -> ScratchPatch | None:
    """Cut the scratch in ``box`` (xyxy, photo pixels) of ``image`` uint8[H, W, 3].

    Returns None when the box is smaller than 3 px or has no ring of background on the photo.
    """
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    h, w = image.shape[:2]
    if x1 - x0 < 3 or y1 - y0 < 3 or x0 < ring or y0 < ring or x1 > w - ring or y1 > h - ring:
        return None
    crop = image[y0 - ring : y1 + ring, x0 - ring : x1 + ring].astype(np.float32)
    inner = (ring, ring, ring + x1 - x0, ring + y1 - y0)
    background, noise = _ring_plane(crop, inner)
    delta = (crop[ring:-ring, ring:-ring] - background).astype(np.float32)
    strength = np.abs(delta.mean(axis=2))
    lo = 2.0 * noise
    hi = max(float(np.percentile(strength, 95)), lo + 1.0)
    alpha = np.clip((strength - lo) / (hi - lo), 0, 1) * _feather(y1 - y0, x1 - x0, feather)
    return ScratchPatch(delta, alpha.astype(np.float32), source, category_id, colour)


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize(size, Image.BILINEAR))


def transform_patch(patch: ScratchPatch, rot90: int, flip: bool, scale: float) -> ScratchPatch:
    """Rotate by ``rot90`` quarter turns (counter-clockwise), flip left-right, then scale."""
    delta, alpha = np.rot90(patch.delta, rot90), np.rot90(patch.alpha, rot90)
    if flip:
        delta, alpha = delta[:, ::-1], alpha[:, ::-1]
    if scale != 1.0:
        w, h = alpha.shape[1], alpha.shape[0]
        size = (max(3, round(w * scale)), max(3, round(h * scale)))
        delta = np.stack([_resize(delta[..., c], size) for c in range(3)], axis=2)
        alpha = _resize(alpha, size)
    return ScratchPatch(np.ascontiguousarray(delta), np.ascontiguousarray(alpha), patch.source,
                        patch.category_id, patch.colour)


def inverts(source_colour: str, target_colour: str, bright_colours: Sequence[str]) -> bool:
    """Whether a scratch cut on ``source_colour`` is pasted inverted on ``target_colour``:
    exactly one of the two is a bright-scratch colour (unknown colours never invert)."""
    if not source_colour or not target_colour:
        return False
    return (source_colour in bright_colours) != (target_colour in bright_colours)


def paste_scratch(
    image: np.ndarray, patch: ScratchPatch, x: int, y: int, gain: float = 1.0, grey: bool = False,
    invert: bool = False, sign: int = 0,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Paste ``patch`` with its top-left at ``(x, y)``; returns a new uint8 image and the box.

    ``grey``: paste the luminance difference on all channels; ``invert``: paste minus the
    luminance difference on all channels (a dark scratch becomes a light one); ``sign`` +1 /
    -1: paste only the pixels whose (final) luminance difference is positive / negative.

    Raises ValueError when the patch does not fit inside the image at that position.
    """
    w, h = patch.size
    if x < 0 or y < 0 or x + w > image.shape[1] or y + h > image.shape[0]:
        raise ValueError(
            f"patch {w}x{h} at ({x}, {y}) leaves the {image.shape[1]}x{image.shape[0]} image"
        )
    delta = patch.delta
    if grey or invert:
        delta = np.repeat(delta.mean(axis=2, keepdims=True), 3, axis=2)
    if invert:
        delta = -delta
    if sign:
        lum = delta.mean(axis=2, keepdims=True)
        delta = delta * ((lum > 0) if sign > 0 else (lum < 0))
    out = image.copy()
    region = out[y : y + h, x : x + w].astype(np.float32)
    region += gain * patch.alpha[..., None] * delta
    out[y : y + h, x : x + w] = np.clip(np.rint(region), 0, 255).astype(np.uint8)
    return out, (float(x), float(y), float(x + w), float(y + h))


def _sign(cfg: SynthesisConfig, colour: str, negative: bool) -> int:
    """The luminance sign a labelled paste on ``colour`` keeps under ``clip_polarity``."""
    if not cfg.clip_polarity or negative or not colour:
        return 0
    return 1 if colour in cfg.bright_colours else -1


def _clear(box: np.ndarray, occupied: np.ndarray, gap: float) -> bool:
    if len(occupied) == 0:
        return True
    sep = (
        (box[2] + gap <= occupied[:, 0])
        | (occupied[:, 2] + gap <= box[0])
        | (box[3] + gap <= occupied[:, 1])
        | (occupied[:, 3] + gap <= box[1])
    )
    return bool(sep.all())


def paste_random(
    image: np.ndarray,
    part: np.ndarray,
    occupied: np.ndarray,
    bank: Sequence[ScratchPatch],
    rng: np.random.Generator,
    cfg: SynthesisConfig,
    count: int,
    colour: str = "",
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Paste up to ``count`` random scratches from ``bank`` on ``image`` uint8[H, W, 3].

    Args:
        part: bool[H, W], where a paste may land (the part, away from its edge).
        occupied: float[N, 4] xyxy boxes to stay clear of (the real scratches).
        colour: the part colour of ``image`` (polarity rule, see the module doc).
    Returns the new image, the pasted boxes float[K, 4] (K <= count) and their categories;
    negative pastes (``cfg.negative_probability``) change the image but return no box.
    """
    boxes: list[tuple[float, float, float, float]] = []
    cats: list[int] = []
    taken = np.asarray(occupied, dtype=np.float64).reshape(-1, 4)
    for _ in range(count if bank else 0):
        src = bank[int(rng.integers(len(bank)))]
        scale = float(rng.uniform(*cfg.scale_range))
        patch = transform_patch(src, int(rng.integers(4)), bool(rng.integers(2)), scale)
        w, h = patch.size
        if w >= image.shape[1] or h >= image.shape[0]:
            continue
        for _ in range(cfg.attempts):
            x = int(rng.integers(image.shape[1] - w + 1))
            y = int(rng.integers(image.shape[0] - h + 1))
            box = np.array([x, y, x + w, y + h], dtype=np.float64)
            if part[y : y + h, x : x + w].all() and _clear(box, taken, gap=4.0):
                gain = float(rng.uniform(*cfg.gain_range))
                grey = bool(rng.random() < cfg.grey_probability)
                invert = inverts(patch.colour, colour, cfg.bright_colours)
                negative = invert and cfg.negative_probability > 0 and bool(
                    rng.random() < cfg.negative_probability)
                image, pasted = paste_scratch(image, patch, x, y, gain, grey,
                                              invert and not negative,
                                              _sign(cfg, colour, negative))
                if not negative:
                    boxes.append(pasted)
                    cats.append(patch.category_id)
                taken = np.vstack([taken, box])
                break
    return image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), cats


def render_synthesis_preview(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], path: str | Path, cell: int = 256
) -> Path:
    """Save a PNG: each row is a real scratch crop (left) and a pasted one (right).

    ``pairs`` holds ``(real_crop, pasted_crop)`` uint8[h, w, 3] arrays (any sizes: each is
    fitted into a ``cell`` square). Written atomically (temp file + rename).
    """
    path = Path(path)
    sheet = Image.new("RGB", (2 * cell + 12, max(1, len(pairs)) * (cell + 4) + 20), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    draw.text((8, 4), "real", fill=(0, 255, 0))
    draw.text((cell + 12, 4), "pasted", fill=(255, 0, 255))
    for row, crops in enumerate(pairs):
        for col, crop in enumerate(crops):
            im = Image.fromarray(crop)
            im.thumbnail((cell, cell))
            sheet.paste(im, (4 + col * (cell + 4), 20 + row * (cell + 4)))
    tmp = path.with_suffix(".tmp.png")
    sheet.save(tmp)
    tmp.replace(path)
    return path


def _crop_with_box(image: np.ndarray, box: np.ndarray, pad: int, colour: tuple) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
    crop = Image.fromarray(image[cy0:cy1, cx0:cx1])
    ImageDraw.Draw(crop).rectangle([x0 - cx0, y0 - cy0, x1 - cx0 - 1, y1 - cy0 - 1], outline=colour)
    return np.asarray(crop)


def preview_synthesis(dataset: SyntheticSamples, path: str | Path, rows: int = 6,
                      pad: int = 48) -> Path:
    """PNG of real scratches (left, green box) next to pasted ones (right, magenta box) drawn
    by a synthesis-enabled :class:`scratchdet.data.tiles.TileDataset`."""
    if not dataset.synthesis:
        raise ValueError("preview_synthesis: synthesis is off for this dataset")
    real, pasted = [], []
    for i in range(len(dataset)):
        s = dataset.sample(i)
        for box, syn in zip(s.boxes, s.synthetic, strict=True):
            target = pasted if syn else real
            colour = (255, 0, 255) if syn else (0, 255, 0)
            if len(target) < rows:
                target.append(_crop_with_box(s.image, box, pad, colour))
        if len(real) >= rows and len(pasted) >= rows:
            break
    return render_synthesis_preview(list(zip(real, pasted, strict=False)), path)
