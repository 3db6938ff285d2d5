"""The decoded window of a training photo around its part (what :mod:`.tiles` draws from).

:func:`load_window` locates the part on a reduced JPEG decode (``geometry.localize``), decodes
the part region widened by ``context`` px (and by any box outside it) at full resolution, and
marks where copy-paste synthesis may land (the part, away from its edge).

With ``red_polarity`` a red part (:func:`scratchdet.geometry.localize.is_red_part` on the same
reduced view and part region the predictor uses) is converted to the white parts' polarity
(:func:`scratchdet.imaging.white_polarity_array`), as the predictor shows it to the model:
training then sees red parts as prediction will. The window records it (``shown_white``) so
that synthesis treats the converted part as a white one (its scratches are now dark).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from scratchdet.data.records import ImageRecord, colour_from_name
from scratchdet.data.tile_ops import structure_points, xyxy
from scratchdet.geometry.localize import (
    LocalizeConfig,
    Region,
    foreground_mask,
    is_red_part,
    locate_part,
    read_reduced,
)
from scratchdet.geometry.tiling import Tile
from scratchdet.imaging import white_polarity_array

#: the part colour synthesis sees for a red part converted to the white parts' polarity
SHOWN_WHITE_COLOUR = "white"


@dataclass
class PhotoWindow:
    """The decoded window of one photo around its part, and the paste mask in it."""

    window: Tile
    pixels: np.ndarray  # uint8[h, w, 3] of the window
    part: np.ndarray  # bool[h, w]: on the part, away from its edge (where pastes may land)
    hard: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    # int[K, 2] window (x, y) of the strongest structure on the part (structure_points)
    shown_white: bool = False  # a red part converted to the white parts' polarity


def part_colour(file_name: str, window: PhotoWindow) -> str:
    """The part colour the synthesis polarity rule sees: ``"white"`` for a converted red part
    (:attr:`PhotoWindow.shown_white`), else the colour in the file name."""
    return SHOWN_WHITE_COLOUR if window.shown_white else colour_from_name(file_name)


def whole_photo_is_red(path: str | Path, draft_scale: int = 8) -> bool:
    """Whether the part of a photo seen whole (no part region: a ``resize`` model's predictor)
    is red (:func:`is_red_part` on a 1/``draft_scale`` view of the whole photo). Decided once
    per photo and process: training asks again for every sample of every epoch."""
    return _whole_photo_is_red(str(path), draft_scale)


@lru_cache(maxsize=4096)
def _whole_photo_is_red(path: str, draft_scale: int) -> bool:
    small, size = read_reduced(path, draft_scale)
    return is_red_part(small, (0, 0, *size), size)


def window_box(region: Region, boxes: np.ndarray, tile: int, context: int,
               size: tuple[int, int]) -> Tile:
    """The part region grown to hold every box (``float[N, 4]`` xyxy), widened by ``context``
    px, at least ``tile`` wide and high where the photo (``size`` = (width, height)) allows,
    kept inside the photo."""
    outer = np.array(region.box)
    if len(boxes):  # a box outside the found region still gets its positive tiles
        outer[:2] = np.minimum(outer[:2], np.floor(boxes[:, :2].min(axis=0)))
        outer[2:] = np.maximum(outer[2:], np.ceil(boxes[:, 2:].max(axis=0)))
    window = [int(v) for v in outer + np.array([-context, -context, context, context])]
    for lo, hi, side in ((0, 2, size[0]), (1, 3, size[1])):
        short = max(min(tile, side) - (window[hi] - window[lo]), 0)
        window[lo] -= short // 2
        window[hi] += short - short // 2
        shift = max(-window[lo], 0) - max(window[hi] - side, 0)
        window[lo], window[hi] = max(window[lo] + shift, 0), min(window[hi] + shift, side)
    x0, y0, x1, y1 = (int(v) for v in window)
    return x0, y0, x1, y1


def paste_mask(small: np.ndarray, size: tuple[int, int], lcfg: LocalizeConfig,
               region: Region, window: Tile) -> np.ndarray:
    """``bool[h, w]`` over ``window``: the part's grid cells (from the reduced view ``small``)
    inside the part region, eroded by one cell."""
    grid = foreground_mask(small, lcfg)
    grid[1:-1, 1:-1] &= grid[:-2, 1:-1] & grid[2:, 1:-1] & grid[1:-1, :-2] & grid[1:-1, 2:]
    cell_x = size[0] / small.shape[1] * lcfg.block
    cell_y = size[1] / small.shape[0] * lcfg.block
    wx0, wy0, wx1, wy1 = window
    cols = np.minimum((np.arange(wx0, wx1) / cell_x).astype(int), grid.shape[1] - 1)
    rows = np.minimum((np.arange(wy0, wy1) / cell_y).astype(int), grid.shape[0] - 1)
    part = grid[rows][:, cols]
    x0, y0, x1, y1 = region.box
    xs, ys = np.arange(wx0, wx1), np.arange(wy0, wy1)
    part &= ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
    return part


def load_window(record: ImageRecord, tile: int, context: int, lcfg: LocalizeConfig,
                hard_top: float | None = None, red_polarity: bool = False) -> PhotoWindow:
    """Decode the part window of ``record``: its part region (and boxes) + ``context`` px;
    with ``hard_top``, also its strongest structure (:func:`structure_points`); with
    ``red_polarity``, a red part in the white parts' polarity (see the module doc)."""
    if record.path is None:
        raise ValueError(f"{record.file_name}: photo not on disk (record.path is None)")
    small, size = read_reduced(record.path, lcfg.draft_scale)
    if size != (record.width, record.height):
        raise ValueError(
            f"{record.path}: photo is {size[0]}x{size[1]}, the annotations say "
            f"{record.width}x{record.height}"
        )
    region = locate_part(small, size, lcfg)
    window = window_box(region, xyxy(record), tile, context, size)
    with Image.open(record.path) as im:
        pixels = np.asarray(im.convert("RGB").crop(window))
    red = red_polarity and is_red_part(small, region.box, size)
    if red:
        pixels = white_polarity_array(pixels)
    part = paste_mask(small, size, lcfg, region, window)
    hard = (np.zeros((0, 2), dtype=np.int64) if hard_top is None
            else structure_points(pixels, part, hard_top))
    return PhotoWindow(window, pixels, part, hard, red)
