"""Named box-size bands for the evaluator, in pixels of the original photo.

A band is an area range ``[lo_area, hi_area]`` in px^2, passed to pycocotools' COCOeval as
``params.areaRng``. COCOeval treats both ends as inclusive, so a box whose area is exactly
on an edge (e.g. 40^2 = 1600 px^2) counts in both neighbouring bands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Upper area of the "all" band, as in pycocotools' defaults.
ALL_HI_AREA = 1e10
ALL_BAND_NAME = "all"


@dataclass(frozen=True)
class SizeBand:
    """One area band: boxes with ``lo_area <= w*h <= hi_area`` (px^2)."""

    name: str
    lo_area: float
    hi_area: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a size band needs a non-empty name")
        if not (0 <= self.lo_area < self.hi_area):
            raise ValueError(
                f"size band '{self.name}': expected 0 <= lo_area < hi_area, "
                f"got lo_area={self.lo_area}, hi_area={self.hi_area}"
            )


def all_band() -> SizeBand:
    """The band holding every box (0 to 1e10 px^2)."""
    return SizeBand(ALL_BAND_NAME, 0.0, ALL_HI_AREA)


def side_label(side: float) -> str:
    """A band edge as written in band names: ``40`` -> ``"40"``, ``100000`` -> ``"1e5"``."""
    if side > 0 and side >= 1e4:
        exponent = math.log10(side)
        if exponent == int(exponent):
            return f"1e{int(exponent)}"
    return f"{side:g}"


def band_from_sides(lo_side: float, hi_side: float, name: str | None = None) -> SizeBand:
    """A band given by square-root areas (sides) in px: ``(40, 70)`` -> ``"40^2-70^2"``."""
    if name is None:
        lo = "0" if lo_side == 0 else f"{side_label(lo_side)}^2"
        name = f"{lo}-{side_label(hi_side)}^2"
    return SizeBand(name, float(lo_side) ** 2, float(hi_side) ** 2)


def seed_bands() -> tuple[SizeBand, ...]:
    """The seed's bands: 0-40^2, 40^2-70^2, 70^2-96^2, 96^2-1e5^2."""
    return tuple(band_from_sides(lo, hi) for lo, hi in ((0, 40), (40, 70), (70, 96), (96, 1e5)))


def parse_bands(text: str) -> tuple[SizeBand, ...]:
    """Parse ``"0:40,40:70,70:96,96:1e5"`` (sides in px) into bands.

    An optional name goes before ``=``: ``"tiny=0:40,big=40:1e5"``.
    """
    bands: list[SizeBand] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, spec = item.rpartition("=")
        lo_text, sep, hi_text = spec.partition(":")
        try:
            if not sep:
                raise ValueError
            lo, hi = float(lo_text), float(hi_text)
        except ValueError:
            raise ValueError(
                f"band '{item}': expected LO:HI in sqrt-area px (e.g. '0:40' or 'small=0:40')"
            ) from None
        bands.append(band_from_sides(lo, hi, name or None))
    if not bands:
        raise ValueError(f"bands '{text}': expected at least one LO:HI (e.g. '0:40,40:70')")
    return check_bands(bands)


def check_bands(bands: Sequence[SizeBand]) -> tuple[SizeBand, ...]:
    """Return ``bands`` as a tuple after checking names are unique and not ``"all"``."""
    names = [b.name for b in bands]
    if ALL_BAND_NAME in names:
        raise ValueError(f"band name '{ALL_BAND_NAME}' is reserved (it is always evaluated)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"band names must be unique; repeated: {', '.join(dupes)}")
    return tuple(bands)
