"""The Inspector adapters: boxes mapped back to original pixels exactly; checkpoint errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scratchdet.service.imaging import write_atomic
from scratchdet.service.inspector import (
    Inspector,
    TorchDetectorInspector,
    checkpoint_model_id,
    inspector_from_checkpoint,
)


class FixedDetector(torch.nn.Module):
    """Answers fixed boxes in the coordinates of the image it was given; records its size."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        _, height, width = images[0].shape
        self.seen.append((width, height))
        boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, width + 5.0, height + 5.0]])
        return [{"boxes": boxes, "scores": torch.tensor([0.9, 0.3]),
                 "labels": torch.tensor([1, 1])}]


def test_boxes_are_scaled_back_to_original_pixels() -> None:
    model = FixedDetector()
    inspector = TorchDetectorInspector(model, "fixed", max_side=1152)
    result = inspector.inspect(Image.new("RGB", (4608, 3072)), threshold=0.2)
    assert model.seen == [(1152, 768)]  # ran on a copy 4x smaller
    assert result.boxes == [[40.0, 80.0, 120.0, 160.0], [0.0, 0.0, 4608.0, 3072.0]]  # clipped
    assert result.scores == pytest.approx([0.9, 0.3])
    assert (result.verdict, result.model_id) == ("fail", "fixed")
    assert set(result.timings) == {"preprocess_ms", "model_ms", "postprocess_ms"}
    assert isinstance(inspector, Inspector)


def test_threshold_and_numpy_input() -> None:
    inspector = TorchDetectorInspector(FixedDetector(), "fixed")  # full resolution
    photo = np.zeros((300, 400, 3), dtype=np.uint8)
    kept = inspector.inspect(photo, threshold=0.5)
    assert (kept.boxes, kept.verdict) == ([[10.0, 20.0, 30.0, 40.0]], "fail")
    assert inspector.inspect(photo, threshold=0.95).verdict == "pass"
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        inspector.inspect(np.zeros((300, 400), dtype=np.uint8), threshold=0.5)


def test_checkpoint_factory_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt not found"):
        inspector_from_checkpoint(tmp_path / "missing.ckpt")
    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "scratchdet.training.checkpoint", None)
    with pytest.raises(RuntimeError, match="load_detector is not available"):
        inspector_from_checkpoint(checkpoint)


def test_checkpoint_factory_wraps_the_loaded_detector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"weights")
    fake_module = type(sys)("scratchdet.training.checkpoint")
    fake_module.load_detector = lambda path: FixedDetector()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "scratchdet.training.checkpoint", fake_module)
    inspector = inspector_from_checkpoint(checkpoint)
    # sha256(b"weights") starts with 4f...: the id names the exact file served.
    assert inspector.model_id == checkpoint_model_id(checkpoint)
    assert inspector.model_id.startswith("best.ckpt@") and len(inspector.model_id) == 22
    assert inspector.inspect(Image.new("RGB", (64, 48)), 0.5).boxes == [[10.0, 20.0, 30.0, 40.0]]


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "photo.jpg"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["photo.jpg"]
