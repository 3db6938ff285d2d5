"""Whole-detector ONNX export: dynamic-size parity with PyTorch (matched by IoU), the spec
inside the file, the export command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou
from typer.testing import CliRunner

from scratchdet.artifact import ArtifactError, ModelSpec, read_onnx_spec, save_model
from scratchdet.cli import app
from scratchdet.inference.export import export_onnx, graph_facts
from scratchdet.inference.onnx_runtime import OnnxDetector
from scratchdet.models.factory import build_model
from scratchdet.structures import Detections

SCORE_THRESH = 0.5
LITE0 = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), {"score_thresh": SCORE_THRESH,
                                                         "detections_per_img": 300},
                  nested="suppress:0.6")  # not the default: the file must carry it


def as_tensor(image: np.ndarray) -> torch.Tensor:
    """The float tensor the torch runtime makes of a uint8 crop."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255)


def torch_dets(out: dict[str, torch.Tensor]) -> Detections:
    return Detections.from_arrays(out["boxes"].numpy(), out["scores"].numpy(),
                                  out["labels"].numpy())


def assert_same_detections(expected: Detections, got: Detections, thresh: float) -> None:
    """Every box of one side has a partner on the other: IoU >= 0.9, score within 1e-3.

    Matched by IoU, not by index (near-tied scores reorder). Boxes scoring within 1e-3 of the
    score threshold may fall on either side of it, so they need no partner.
    """
    assert len(expected) > 0 and len(got) > 0
    iou = box_iou(torch.from_numpy(expected.boxes), torch.from_numpy(got.boxes)).numpy()
    close = np.abs(expected.scores[:, None] - got.scores[None, :]) <= 1e-3
    same_label = expected.labels[:, None] == got.labels[None, :]
    match = (iou >= 0.9) & close & same_label
    for side, scores, found in ((0, expected.scores, match.any(1)),
                                (1, got.scores, match.any(0))):
        clear = scores >= thresh + 1e-3
        assert bool(found[clear].all()), f"side {side}: {int((~found[clear]).sum())} unmatched"


@pytest.fixture(scope="module")
def lite0(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """The default model with ImageNet backbone and seeded heads (confident boxes), exported."""
    torch.manual_seed(0)
    model = build_model("lite0_fpn_fast", **LITE0.overrides)
    model.eval()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "lite0.onnx", LITE0, (512, 512))
    return model, path


def _crop(sample: Path, y: int, x: int, h: int, w: int) -> np.ndarray:
    with Image.open(sample / "val" / "white_DSC_0439.JPG") as im:
        im.draft("RGB", (im.width // 2, im.height // 2))
        return np.asarray(im.convert("RGB"))[y : y + h, x : x + w].copy()


def test_lite0_onnx_matches_pytorch_at_other_sizes(lite0: tuple, sample: Path) -> None:
    model, path = lite0
    detector = OnnxDetector(path, threads=2)
    # real photo regions, sizes other than the traced 512x512 (one not a multiple of 32)
    images = [_crop(sample, 500, 900, 500, 630), _crop(sample, 600, 1000, 352, 416)]
    got = detector(images)
    with torch.no_grad():  # one image per call: a batch would pad both to a common size
        expected = [torch_dets(model([as_tensor(image)])[0]) for image in images]
    for e, g in zip(expected, got, strict=True):
        assert isinstance(g, Detections) and g.labels.dtype == np.int64
        assert_same_detections(e, g, SCORE_THRESH)
        assert abs(len(e) - len(g)) <= 2


def test_spec_and_graph_facts_round_trip(lite0: tuple, tmp_path: Path) -> None:
    model, path = lite0
    spec, graph = read_onnx_spec(path)
    assert spec == LITE0 and OnnxDetector(path).spec == LITE0
    assert spec.nested == "suppress:0.6" and spec.nested_rule == ("suppress", 0.6, 0.5)
    assert graph == graph_facts(model)
    assert (graph["image_mean"], graph["size_divisible"], graph["resize"]) == (
        [0.5, 0.5, 0.5], 32, False)
    assert graph["score_threshold"] == SCORE_THRESH
    with pytest.raises(ArtifactError, match=r"nothing\.onnx"):
        read_onnx_spec(tmp_path / "nothing.onnx")
    with pytest.raises(ArtifactError, match=r"nothing\.onnx"):
        OnnxDetector(tmp_path / "nothing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ArtifactError, match=r"bad\.onnx"):
        read_onnx_spec(bad)
    with pytest.raises(ArtifactError, match=r"bad\.onnx: not a readable ONNX file"):
        OnnxDetector(bad)
    with pytest.raises(ValueError, match=r"uint8 arrays \[H, W, 3\]"):
        OnnxDetector(path)([np.zeros((8, 8), dtype=np.uint8)])


def test_lite0_cascade_onnx_matches_pytorch(sample: Path, tmp_path: Path) -> None:
    # Three box stages: each stage's refined boxes feed the next inside the traced graph.
    torch.manual_seed(0)
    overrides = {"score_thresh": SCORE_THRESH, "detections_per_img": 300}
    model = build_model("lite0_cascade_fast", **overrides).eval()
    spec = ModelSpec("lite0_cascade_fast", ("scratch",), (1,), overrides)
    path = export_onnx(model, tmp_path / "cascade.onnx", spec, (512, 512))
    assert read_onnx_spec(path)[0] == spec
    image = _crop(sample, 500, 900, 500, 630)
    got = OnnxDetector(path, threads=2)([image])[0]
    with torch.no_grad():
        expected = torch_dets(model([as_tensor(image)])[0])
    assert_same_detections(expected, got, SCORE_THRESH)


@pytest.mark.slow  # ~15-35 s: the X101 trace and a 350 MB graph
def test_cascade_seed_exports_with_dynamic_size(tmp_path: Path) -> None:
    # Small resize setting keeps it quick; the graph resizes like the model at any input size.
    torch.manual_seed(0)
    model = build_model("cascade_rcnn_x101_32x4d_fpn", min_size=160, max_size=224,
                        score_thresh=0.0).eval()
    spec = ModelSpec("cascade_rcnn_x101_32x4d_fpn", ("scratch",), (1,), input_mode="resize",
                     resize=(224, 160))
    graph = graph_facts(model)
    assert graph["resize"] and (graph["min_size"], graph["max_size"]) == (160, 224)
    path = export_onnx(model, tmp_path / "cascade.onnx", spec, trace_size=(160, 224))
    image = np.random.default_rng(1).integers(0, 256, (200, 150, 3), dtype=np.uint8)
    got = OnnxDetector(path, threads=2)([image])[0]
    with torch.no_grad():
        expected = torch_dets(model([as_tensor(image)])[0])
    assert_same_detections(expected, got, 0.0)


def test_export_command(tmp_path: Path) -> None:
    overrides = {"pretrained": False, "fpn_channels": 16}
    model = build_model("lite0_fpn_fast", **overrides)
    spec = ModelSpec("lite0_fpn_fast", ("scratch",), (7,), overrides, tile_size=512,
                     tile_overlap=128, recipe={"epochs": 3})
    ckpt = save_model(tmp_path / "model.pt", model.state_dict(), spec)
    out = tmp_path / "out" / "m.onnx"
    result = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(out), "--trace-size", "128"])
    assert result.exit_code == 0, result.output
    got, graph = read_onnx_spec(out)
    assert got == spec and graph["exported_from"] == str(ckpt)
    again = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(out)])
    assert again.exit_code == 2 and "m.onnx exists; give --force" in again.output
    stamped = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(out), "--force",
                                       "--trace-size", "128", "--threshold", "0.3"])
    assert stamped.exit_code == 0, stamped.output
    got, _ = read_onnx_spec(out)
    assert (got.threshold, got.threshold_source) == (0.3, "--threshold 0.3 at export")
    missing = CliRunner().invoke(app, ["export", str(tmp_path / "none.pt")])
    assert missing.exit_code == 2 and "none.pt" in missing.output


def test_fcos_preset_exports_with_dynamic_size(tmp_path: Path) -> None:
    # Random FCOS heads give many sub-pixel-wide boxes (IoU undefined): compare coordinates.
    torch.manual_seed(0)
    model = build_model("lite0_fcos", pretrained=False, score_thresh=0.05).eval()
    spec = ModelSpec("lite0_fcos", ("scratch",), (1,))
    path = export_onnx(model, tmp_path / "fcos.onnx", spec, trace_size=(192, 256))
    image = np.random.default_rng(1).integers(0, 256, (176, 208, 3), dtype=np.uint8)
    got = OnnxDetector(path)([image])[0]
    with torch.no_grad():
        expected = torch_dets(model([as_tensor(image)])[0])
    assert len(expected) > 0
    nearest = torch.cdist(torch.from_numpy(expected.boxes), torch.from_numpy(got.boxes),
                          p=float("inf")).min(1).values
    assert float(nearest.max()) < 1e-2
    np.testing.assert_allclose(np.sort(got.scores), np.sort(expected.scores), atol=1e-3)
