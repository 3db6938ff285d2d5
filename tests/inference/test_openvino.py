"""OpenVINO runs the exported graph as ONNX Runtime does (boxes IoU >= 0.9, scores 1e-3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from scratchdet.artifact import ArtifactError, ModelSpec
from scratchdet.inference.export import export_onnx
from scratchdet.inference.load import build_predictor, load_model, resolve_runtime
from scratchdet.models.factory import build_model

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    spec = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), {"score_thresh": 0.3},
                     tile_size=512, tile_overlap=128)
    model = build_model("lite0_fpn_fast", score_thresh=0.3).eval()
    return export_onnx(model, tmp_path_factory.mktemp("ov") / "m.onnx", spec, (256, 256))


def test_openvino_matches_onnx_runtime_on_a_real_photo(exported: Path, sample: Path) -> None:
    photo = sample / "val" / "white_DSC_0439.JPG"
    got = {}
    for runtime in ("onnx", "openvino"):
        loaded = load_model(exported, runtime, threads=2)
        assert loaded.runtime == runtime and loaded.spec.tile_size == 512
        got[runtime] = build_predictor(loaded, scale=0.25).predict(photo).detections
    e, g = got["onnx"], got["openvino"]
    assert len(e) > 0 and abs(len(e) - len(g)) <= 2
    iou = box_iou(torch.from_numpy(e.boxes), torch.from_numpy(g.boxes)).numpy()
    close = np.abs(e.scores[:, None] - g.scores[None, :]) <= 1e-3
    matched = ((iou >= 0.9) & close).any(1)
    assert bool(matched[e.scores >= 0.3 + 1e-3].all())


def test_openvino_needs_an_onnx_file(exported: Path, tmp_path: Path) -> None:
    assert resolve_runtime(exported, "openvino") == "openvino"
    with pytest.raises(ValueError, match=r"runtime openvino runs an exported \.onnx file"):
        resolve_runtime(tmp_path / "model.pt", "openvino")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    with pytest.raises(ArtifactError, match=r"bad\.onnx"):
        load_model(bad, "openvino")
