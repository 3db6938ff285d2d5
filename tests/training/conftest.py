"""Fixtures for training tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from .training_helpers import write_synthetic


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """Path of the COCO json of a 4-photo synthetic set (photos next to it)."""
    data = tmp_path / "data"
    data.mkdir()
    return write_synthetic(data)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine this avoids OpenMP spinning under load
    (a training test took 5 min with 2 threads under load, 14 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
