"""Cheap localisation of the part on the plain grey background.

The photo is looked at in a 1/32-scale grid (a 1/8 JPEG draft decode, then 4x4 block means):

1. The background luminance is a quadratic surface fitted robustly to a band along the top,
   left and right borders (the clips stand at the bottom), so vignetting is removed.
2. Foreground = luminance far from the background (``> max(lum_sigmas * noise, lum_threshold)``)
   or colour saturation (``max - min`` of RGB) above the background's by ``chroma_threshold``.
3. Thin structures (the clip stands) are removed by a binary opening: ``open_lum`` blocks for
   the luminance mask, the smaller ``open_chroma`` for the colour mask (coloured parts may be
   thin, the grey clips are not coloured).
4. The largest connected component is the part; components at least ``secondary_frac`` as
   large and close to it (a part seen in pieces) are added.
5. Their bounding box plus ``margin`` pixels, in original pixels, is the region.

When unsure (no component, a part smaller than ``min_part_frac`` of the photo, or a region
larger than ``max_region_frac`` of it) the region is the whole photo and ``fallback`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from scratchdet.config import StrictConfig
from scratchdet.imaging import decode_draft


class LocalizeConfig(StrictConfig):
    """Settings of :func:`locate_part` (defaults tuned on the 24 sample photos)."""

    draft_scale: int = Field(8, description="JPEG draft reduction: 1, 2, 4 or 8")
    block: int = Field(4, ge=1, description="block-mean factor on top of the draft decode")
    lum_threshold: float = Field(20.0, gt=0, description="min |luminance - background|, 0-255")
    lum_sigmas: float = Field(6.0, gt=0, description="min |luminance - background| in noise units")
    chroma_threshold: float = Field(25.0, gt=0, description="min saturation above background")
    open_lum: int = Field(5, ge=1, description="opening size (blocks) of the luminance mask")
    open_chroma: int = Field(1, ge=1, description="opening size (blocks) of the colour mask")
    margin: int = Field(128, ge=0, description="pixels added around the part (original scale)")
    min_part_frac: float = Field(0.001, ge=0, description="smaller part -> whole photo")
    max_region_frac: float = Field(0.7, gt=0, le=1, description="larger region -> whole photo")
    secondary_frac: float = Field(0.25, gt=0, le=1, description="area of extra pieces vs largest")
    secondary_gap: float = Field(0.5, ge=0, description="max gap of extra pieces, x part size")


@dataclass(frozen=True)
class Region:
    """Where the part is: ``box`` ``(x0, y0, x1, y1)`` in original pixels."""

    box: tuple[int, int, int, int]
    fallback: bool
    reason: str

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def read_reduced(path: str | Path, draft_scale: int = 8) -> tuple[np.ndarray, tuple[int, int]]:
    """A reduced RGB decode (JPEG draft mode, a few ms) and the full ``(width, height)``."""
    if draft_scale not in (1, 2, 4, 8):
        raise ValueError(f"draft_scale must be 1, 2, 4 or 8, got {draft_scale}")
    try:
        image, size = decode_draft(path, factor=draft_scale)
        return np.asarray(image), size
    except (OSError, SyntaxError) as err:
        raise ValueError(f"{path}: cannot read as an image ({err})") from None


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape[0] // k, a.shape[1] // k
    return a[: h * k, : w * k].reshape(h, k, w, k, *a.shape[2:]).mean(axis=(1, 3))


def fit_background(lum: np.ndarray, band: float = 0.12) -> tuple[np.ndarray, float]:
    """Robust quadratic fit of the background on the top/left/right border band.

    Returns the fitted surface (same shape as ``lum``) and the noise (robust sigma).
    """
    h, w = lum.shape
    bh, bw = max(1, int(h * band)), max(1, int(w * band))
    in_band = np.zeros((h, w), dtype=bool)
    in_band[:bh], in_band[:, :bw], in_band[:, -bw:] = True, True, True
    ys, xs = np.nonzero(in_band)
    x, y = xs / w - 0.5, ys / h - 0.5
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    values = lum[ys, xs].astype(np.float64)
    coef = np.zeros(6)
    coef[0] = np.median(values)  # start from a constant: robust to a part in the band
    use = np.ones(len(values), dtype=bool)
    sigma = 1.0
    for _ in range(4):
        resid = values - design @ coef
        sigma = float(1.4826 * np.median(np.abs(resid[use]))) + 0.5
        use &= np.abs(resid) < 3 * sigma
        a = design[use]
        coef = np.linalg.solve(a.T @ a + 1e-9 * np.eye(6), a.T @ values[use])
    gx = (np.arange(w) / w - 0.5)[None, :]
    gy = (np.arange(h) / h - 0.5)[:, None]
    c = coef
    surface = c[0] + c[1] * gx + c[2] * gy + c[3] * gx * gx + c[4] * gx * gy + c[5] * gy * gy
    return surface, sigma


def _erode_dilate(mask: np.ndarray, k: int, erode: bool) -> np.ndarray:
    r = k // 2
    padded = np.pad(mask, r, constant_values=erode)
    h, w = mask.shape
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            win = padded[r + dy : r + dy + h, r + dx : r + dx + w]
            out = (out & win) if erode else (out | win)
    return out


def binary_open(mask: np.ndarray, k: int) -> np.ndarray:
    """Binary opening with a ``k x k`` square (erosion, then dilation); borders count as set."""
    if k <= 1:
        return mask.copy()
    return _erode_dilate(_erode_dilate(mask, k, erode=True), k, erode=False)


def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected labels (``-1`` for background) by iterated min-propagation."""
    h, w = mask.shape
    none = h * w
    lab = np.where(mask, np.arange(h * w).reshape(h, w), none)
    while True:
        p = np.pad(lab, 1, constant_values=none)
        new = np.minimum.reduce([lab, p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]])
        new = np.where(mask, new, none)
        if np.array_equal(new, lab):
            return np.where(mask, lab, -1)
        lab = new


def foreground_mask(small_rgb: np.ndarray, cfg: LocalizeConfig) -> np.ndarray:
    """The part mask on the block grid (steps 1-3 of the module docstring)."""
    grid = _block_mean(small_rgb.astype(np.float32), cfg.block)
    lum = grid.mean(axis=2)
    chroma = grid.max(axis=2) - grid.min(axis=2)
    background, sigma = fit_background(lum)
    bright = np.abs(lum - background) > max(cfg.lum_sigmas * sigma, cfg.lum_threshold)
    coloured = chroma - np.median(chroma) > cfg.chroma_threshold
    return binary_open(bright, cfg.open_lum) | binary_open(coloured, cfg.open_chroma)


def _pick_components(labels: np.ndarray, cfg: LocalizeConfig) -> tuple[np.ndarray, int] | None:
    """Bounding box ``[x0, y0, x1, y1]`` (grid cells) of the part's components and its area."""
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    if len(ids) == 0:
        return None
    boxes = {}
    for i in ids:
        ys, xs = np.nonzero(labels == i)
        boxes[i] = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    main = ids[np.argmax(counts)]
    box = boxes[main].copy()
    size = max(box[2] - box[0], box[3] - box[1])
    area = int(counts.max())
    for i, c in zip(ids, counts, strict=True):
        b = boxes[i]
        gap = max(box[0] - b[2], b[0] - box[2], box[1] - b[3], b[1] - box[3], 0)
        if i != main and c >= cfg.secondary_frac * counts.max() and gap <= cfg.secondary_gap * size:
            box = np.concatenate([np.minimum(box[:2], b[:2]), np.maximum(box[2:], b[2:])])
            area += int(c)
    return box, area


def locate_part(
    small_rgb: np.ndarray, full_size: tuple[int, int], cfg: LocalizeConfig | None = None
) -> Region:
    """Locate the part in a reduced RGB image of a photo of ``full_size = (width, height)``."""
    cfg = cfg or LocalizeConfig()
    width, height = full_size
    whole = (0, 0, width, height)
    if small_rgb.ndim != 3 or small_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB array (h, w, 3), got shape {small_rgb.shape}")
    mask = foreground_mask(small_rgb, cfg)
    picked = _pick_components(label_components(mask), cfg)
    if picked is None:
        return Region(whole, True, "no part found")
    cells, area = picked
    cell_w = width / small_rgb.shape[1] * cfg.block
    cell_h = height / small_rgb.shape[0] * cfg.block
    if area < cfg.min_part_frac * mask.size:
        return Region(whole, True, f"part too small ({area} of {mask.size} cells)")
    x0 = max(int(cells[0] * cell_w) - cfg.margin, 0)
    y0 = max(int(cells[1] * cell_h) - cfg.margin, 0)
    x1 = min(int(np.ceil(cells[2] * cell_w)) + cfg.margin, width)
    y1 = min(int(np.ceil(cells[3] * cell_h)) + cfg.margin, height)
    if (x1 - x0) * (y1 - y0) > cfg.max_region_frac * width * height:
        return Region(whole, True, "region too large")
    return Region((x0, y0, x1, y1), False, "ok")


def locate_part_in_file(path: str | Path, cfg: LocalizeConfig | None = None) -> Region:
    """Locate the part from a JPEG draft decode of ``path`` (no full decode)."""
    cfg = cfg or LocalizeConfig()
    small, size = read_reduced(path, cfg.draft_scale)
    return locate_part(small, size, cfg)


def is_red_part(small_rgb: np.ndarray, box: tuple[int, int, int, int],
                full_size: tuple[int, int], min_frac: float = 0.05,
                margin: int = 40) -> bool:
    """Whether the part in ``box`` (original pixels) of a reduced RGB view is red paint.

    Red: at least ``min_frac`` of the region's pixels have red exceeding both green and blue
    by ``margin`` (0-255). On the sample's 24 train + val photos the red parts score
    0.11-0.36 and the white ones 0.00 (26 Nov).
    """
    if small_rgb.ndim != 3 or small_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB array (h, w, 3), got shape {small_rgb.shape}")
    sx, sy = small_rgb.shape[1] / full_size[0], small_rgb.shape[0] / full_size[1]
    x0, y0, x1, y1 = box
    region = small_rgb[int(y0 * sy) : max(int(y1 * sy), int(y0 * sy) + 1),
                       int(x0 * sx) : max(int(x1 * sx), int(x0 * sx) + 1)].astype(np.int16)
    if region.size == 0:
        return False
    redness = region[..., 0] - np.maximum(region[..., 1], region[..., 2])
    return bool(np.mean(redness > margin) >= min_frac)


def locate_in_views(grid: np.ndarray | None, small: np.ndarray | None,
                    full_size: tuple[int, int], cfg: LocalizeConfig | None,
                    red_polarity: bool = False) -> tuple[Region, bool]:
    """:func:`locate_part` on ``grid``, the block means it computes itself (``cfg.block`` of
    the 1/``draft_scale`` view ``small``, made elsewhere, e.g. on a GPU), and whether the part
    is red (:func:`is_red_part` on ``small``, only with ``red_polarity``). ``cfg`` ``None``:
    localisation off (the whole photo)."""
    if cfg is None or grid is None:
        region = Region((0, 0, *full_size), True, "localisation off")
    else:
        region = locate_part(grid, full_size, cfg.model_copy(update={"block": 1}))
    red = red_polarity and small is not None and is_red_part(small, region.box, full_size)
    return region, red
