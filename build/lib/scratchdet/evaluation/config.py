"""Evaluation settings as a flat YAML config (validated; unknown keys are errors).

Example ``configs/evaluate.yaml``::

    bands: "0:40,40:70,70:96,96:1e5"   # or [[0, 40], [40, 70], ...]; sides in px
    group_by: colour                   # any image attribute; null = only "all"
    groups: [white, red]               # optional: which values, in which order
    max_dets: 100
    part_level: true
    target_recall: 0.95
    bootstrap: 500                     # AP50 intervals from 500 photo resamples (0: off)
"""

from __future__ import annotations

from pydantic import Field

from scratchdet.config import StrictConfig
from scratchdet.evaluation.bands import SizeBand, band_from_sides, check_bands, parse_bands

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class EvaluationConfig(StrictConfig):
    """Settings of ``scratchdet evaluate`` / ``analyze``."""

    bands: str | list[tuple[float, float]] | None = None  # None = the seed's bands
    group_by: str | None = "colour"
    groups: list[str] | None = None
    max_dets: int = Field(100, ge=1)
    part_level: bool = False
    target_recall: float | None = Field(None, gt=0, le=1)
    thresholds: list[float] = Field(default_factory=lambda: list(DEFAULT_THRESHOLDS))
    bootstrap: int = Field(0, ge=0)  # evaluate: photo resamples for AP50 intervals (0: off)
    score_thr: float = Field(0.3, ge=0, le=1)  # analyze: detections drawn / counted
    top_k: int = Field(5, ge=0)  # analyze: best and worst photos written

    def size_bands(self) -> tuple[SizeBand, ...] | None:
        """The configured bands, or None for the seed's."""
        if self.bands is None:
            return None
        if isinstance(self.bands, str):
            return parse_bands(self.bands)
        return check_bands([band_from_sides(lo, hi) for lo, hi in self.bands])
