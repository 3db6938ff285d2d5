"""The Inspector over the one predictor: boxes mapped back to original pixels exactly,
model files of every kind served, load errors named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scratchdet.artifact import ArtifactError, ModelSpec, model_id, save_model
from scratchdet.inference.load import build_predictor, from_module
from scratchdet.service.imaging import write_atomic
from scratchdet.service.inspector import Inspector, PredictorInspector, inspector_from_model

# keep: the photo-sized box holds the better one, and the default rule would halve its score
RESIZE_SPEC = ModelSpec("fixed", ("scratch",), (1,), input_mode="resize", resize=(1152, 768),
                        nested="keep")


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


def _fixed(max_side: int | None = None) -> tuple[FixedDetector, PredictorInspector]:
    model = FixedDetector()
    predictor = build_predictor(from_module(model, RESIZE_SPEC), score_threshold=0.0,
                                max_side=max_side)
    return model, PredictorInspector(predictor, "fixed")


def test_boxes_are_scaled_back_to_original_pixels() -> None:
    model, inspector = _fixed()  # a resize model runs at its training size (long side 1152)
    result = inspector.inspect(Image.new("RGB", (4608, 3072)), threshold=0.2)
    assert model.seen == [(1152, 768)]  # ran on a copy 4x smaller
    assert result.boxes == [[40.0, 80.0, 120.0, 160.0], [0.0, 0.0, 4608.0, 3072.0]]  # clipped
    assert result.scores == pytest.approx([0.9, 0.3])
    assert (result.verdict, result.model_id) == ("fail", "fixed")
    assert {"localise_ms", "model_ms", "merge_ms", "total_ms"} <= set(result.timings)
    assert "decode_ms" not in result.timings  # the service times its own decode
    assert isinstance(inspector, Inspector)


def test_threshold_and_numpy_input() -> None:
    _, inspector = _fixed(max_side=400)  # the photo's own size
    photo = np.zeros((300, 400, 3), dtype=np.uint8)
    kept = inspector.inspect(photo, threshold=0.5)
    assert (kept.boxes, kept.verdict) == ([[10.0, 20.0, 30.0, 40.0]], "fail")
    assert inspector.inspect(photo, threshold=0.95).verdict == "pass"
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        inspector.inspect(np.zeros((300, 400), dtype=np.uint8), threshold=0.5)


def test_model_file_errors_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ArtifactError, match=r"missing\.ckpt: model file not found"):
        inspector_from_model(tmp_path / "missing.ckpt")
    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"weights")
    with pytest.raises(ArtifactError, match=r"best\.ckpt: not a readable torch checkpoint"):
        inspector_from_model(checkpoint)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not a graph")
    with pytest.raises(ArtifactError, match=r"model\.onnx: not a readable ONNX file"):
        inspector_from_model(onnx)


@pytest.mark.parametrize("mode", ["tiles", "resize"])
def test_real_model_is_served(tmp_path: Path, mode: str) -> None:
    from scratchdet.inference.torch_runtime import build_detector

    torch.manual_seed(0)
    spec = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), {"pretrained": False,
                                                            "fpn_channels": 16},
                     input_mode=mode, tile_size=128, tile_overlap=32, resize=(96, 64))
    path = save_model(tmp_path / "model.pt", build_detector(spec).state_dict(), spec)
    inspector = inspector_from_model(path)
    assert inspector.model_id == model_id(path)
    assert inspector.model_id.startswith("model.pt@") and len(inspector.model_id) == 21
    assert (inspector.predictor.localize is None) == (mode == "resize")  # whole photo
    result = inspector.inspect(Image.new("RGB", (192, 128), (120, 120, 120)), threshold=0.0)
    assert len(result.boxes) == len(result.scores)
    for x1, y1, x2, y2 in result.boxes:
        assert 0 <= x1 <= x2 <= 192 and 0 <= y1 <= y2 <= 128
    assert result.timings["model_ms"] > 0
    if mode == "tiles":  # with flips: the same photo through three passes
        flipped = inspector_from_model(path, tta=("h", "v"))
        assert flipped.predictor.tta == ("h", "v")
        again = flipped.inspect(Image.new("RGB", (192, 128), (120, 120, 120)), threshold=0.0)
        assert len(again.boxes) == len(again.scores)
    else:
        assert inspector.predictor.max_side == 96  # the training size
        with pytest.raises(ValueError, match="test-time flips and a decode scale need"):
            inspector_from_model(path, tta=("h",))


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "photo.jpg"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["photo.jpg"]


def test_serve_refuses_unknown_flips() -> None:
    from typer.testing import CliRunner

    from scratchdet.cli import app

    res = CliRunner().invoke(app, ["serve", "--tiny-random", "--tta", "x"])
    assert res.exit_code == 2 and "unknown flip 'x'" in res.output
    rule = CliRunner().invoke(app, ["serve", "--tiny-random", "--nested", "squash"])
    assert rule.exit_code == 2 and "expected MODE" in rule.output
