"""Tiny inputs shared by the model tests (two small images, one with boxes, one clean)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor


@pytest.fixture
def images() -> list[Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(3, 256, 320, generator=generator) for _ in range(2)]


@pytest.fixture
def targets() -> list[dict[str, Tensor]]:
    boxes = torch.tensor([[10.0, 20.0, 80.0, 60.0], [100.0, 100.0, 180.0, 230.0]])
    return [
        {"boxes": boxes, "labels": torch.ones(2, dtype=torch.int64)},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]


@pytest.fixture
def no_box_targets() -> list[dict[str, Tensor]]:
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    return [empty, dict(empty)]
