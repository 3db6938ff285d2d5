"""Fixtures for training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .training_helpers import write_synthetic


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """Path of the COCO json of a 4-photo synthetic set (photos next to it)."""
    data = tmp_path / "data"
    data.mkdir()
    return write_synthetic(data)
