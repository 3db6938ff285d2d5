"""The CPU default model exports to ONNX and ONNX Runtime reproduces PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torchvision.ops import box_iou

from scratchdet.models.factory import DEFAULT_CPU_MODEL, build_model


def _export(module: torch.nn.Module, args: tuple, path: Path, **kwargs: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), opset_version=17, dynamo=False, **kwargs)


def test_backbone_and_neck_export_with_dynamic_size(tmp_path: Path) -> None:
    # TF "same" pads are constant for sizes divisible by 32: one export serves every tile size.
    backbone = build_model(DEFAULT_CPU_MODEL).backbone.eval()
    path = tmp_path / "backbone.onnx"
    _export(backbone, (torch.rand(1, 3, 256, 320),), path, input_names=["x"],
            dynamic_axes={"x": {2: "h", 3: "w"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in ((1, 3, 256, 320), (1, 3, 320, 192)):
        x = torch.rand(*shape)
        with torch.no_grad():
            expected = [f.numpy() for f in backbone(x).values()]
        got = session.run(None, {"x": x.numpy()})
        assert [g.shape for g in got] == [e.shape for e in expected]
        assert max(float(np.abs(g - e).max()) for g, e in zip(got, expected, strict=True)) < 1e-3


def test_whole_model_export_matches_by_iou(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(DEFAULT_CPU_MODEL).eval()
    image = torch.rand(3, 256, 320)
    path = tmp_path / "model.onnx"
    _export(model, ([image],), path, input_names=["image"],
            output_names=["boxes", "labels", "scores"])  # torchvision's dict order
    boxes, labels, scores = ort.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    ).run(None, {"image": image.numpy()})
    with torch.no_grad():
        expected = model([image])[0]
    assert len(boxes) == len(expected["boxes"]) > 0
    # Near-tied scores may reorder: match each PyTorch box to its best ONNX box.
    best = box_iou(expected["boxes"], torch.from_numpy(boxes)).max(dim=1).values
    assert float(best.min()) > 0.99
    assert np.allclose(np.sort(scores), np.sort(expected["scores"].numpy()), atol=1e-3)
    assert set(labels.tolist()) <= {1}
