"""Whole-detector ONNX export: dynamic-size parity with PyTorch (matched by IoU), metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.inference.onnx import (
    OnnxDetector,
    OnnxMeta,
    export_onnx,
    meta_from_model,
    read_onnx_meta,
)
from scratchdet.models.factory import build_model

SCORE_THRESH = 0.5


def assert_same_detections(
    expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], thresh: float
) -> None:
    """Every box of one side has a partner on the other: IoU >= 0.9, score within 1e-3.

    Matched by IoU, not by index (near-tied scores reorder). Boxes scoring within 1e-3 of the
    score threshold may fall on either side of it, so they need no partner.
    """
    assert len(expected["boxes"]) > 0 and len(got["boxes"]) > 0
    iou = box_iou(expected["boxes"], got["boxes"])
    close = (expected["scores"][:, None] - got["scores"][None, :]).abs() <= 1e-3
    same_label = expected["labels"][:, None] == got["labels"][None, :]
    match = (iou >= 0.9) & close & same_label
    for side, scores, found in ((0, expected["scores"], match.any(1)),
                                (1, got["scores"], match.any(0))):
        clear = scores >= thresh + 1e-3
        assert bool(found[clear].all()), f"side {side}: {int((~found[clear]).sum())} unmatched"


@pytest.fixture(scope="module")
def lite0(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """The default model with ImageNet backbone and seeded heads (confident boxes), exported."""
    torch.manual_seed(0)
    model = build_model("lite0_fpn_fast", score_thresh=SCORE_THRESH, detections_per_img=300)
    model.eval()
    meta = meta_from_model(model, "lite0_fpn_fast", ["scratch"], [1], tile_size=1024)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "lite0.onnx", meta, (512, 512))
    return model, path


def _crop(sample: Path, y: int, x: int, h: int, w: int) -> torch.Tensor:
    with Image.open(sample / "val" / "white_DSC_0439.JPG") as im:
        im.draft("RGB", (im.width // 2, im.height // 2))
        arr = np.asarray(im.convert("RGB"))[y : y + h, x : x + w]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255)


def test_lite0_onnx_matches_pytorch_at_other_sizes(lite0: tuple, sample: Path) -> None:
    model, path = lite0
    detector = OnnxDetector(path, threads=2)
    # real photo regions, sizes other than the traced 512x512 (one not a multiple of 32)
    images = [_crop(sample, 500, 900, 500, 630), _crop(sample, 600, 1000, 352, 416)]
    got = detector(images)
    with torch.no_grad():  # one image per call: a batch would pad both to a common size
        expected = [model([image])[0] for image in images]
    for e, g in zip(expected, got, strict=True):
        assert set(g) == {"boxes", "scores", "labels"} and g["labels"].dtype == torch.int64
        assert_same_detections(e, g, SCORE_THRESH)
        assert abs(len(e["boxes"]) - len(g["boxes"])) <= 2


def test_metadata_round_trip(lite0: tuple, tmp_path: Path) -> None:
    model, path = lite0
    meta = read_onnx_meta(path)
    assert meta == meta_from_model(model, "lite0_fpn_fast", ["scratch"], [1], tile_size=1024)
    assert (meta.preset, meta.class_names, meta.image_mean, meta.size_divisible) == (
        "lite0_fpn_fast", ["scratch"], [0.5, 0.5, 0.5], 32)
    assert meta.score_threshold == SCORE_THRESH and meta.resize is False
    assert OnnxMeta.from_json(meta.to_json()) == meta
    assert OnnxDetector(path).meta == meta
    missing = tmp_path / "nothing.onnx"
    with pytest.raises(FileNotFoundError, match=r"nothing\.onnx"):
        read_onnx_meta(missing)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match=r"bad\.onnx"):
        read_onnx_meta(bad)
    with pytest.raises(ValueError, match="Tensor"):
        OnnxDetector(path)([torch.zeros(1, 8, 8)])


@pytest.mark.slow  # ~15-35 s: the X101 trace and a 350 MB graph
def test_cascade_seed_exports_with_dynamic_size(tmp_path: Path) -> None:
    # Small resize setting keeps it quick; the graph resizes like the model at any input size.
    torch.manual_seed(0)
    model = build_model("cascade_rcnn_x101_32x4d_fpn", min_size=160, max_size=224,
                        score_thresh=0.0).eval()
    meta = meta_from_model(model, "cascade_rcnn_x101_32x4d_fpn", input_mode="resize")
    assert meta.resize and (meta.min_size, meta.max_size) == (160, 224)
    path = export_onnx(model, tmp_path / "cascade.onnx", meta, trace_size=(160, 224))
    image = torch.rand(3, 200, 150, generator=torch.Generator().manual_seed(1))
    got = OnnxDetector(path, threads=2)([image])[0]
    with torch.no_grad():
        expected = model([image])[0]
    assert_same_detections(expected, got, 0.0)


def test_export_command(tmp_path: Path) -> None:
    from scratchdet.training.checkpoint import save_model

    overrides = {"pretrained": False, "fpn_channels": 16}
    model = build_model("lite0_fpn_fast", **overrides)
    config = {"model": "lite0_fpn_fast", "model_overrides": overrides, "input_mode": "tiles",
              "tile_size": 512, "tile_overlap": 128}
    ckpt = save_model(tmp_path / "model.pt", model.state_dict(),
                      {"config": config, "class_names": ["scratch"], "category_ids": [7]})
    out = tmp_path / "out" / "m.onnx"
    result = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(out), "--trace-size", "128"])
    assert result.exit_code == 0, result.output
    meta = read_onnx_meta(out)
    assert (meta.category_ids, meta.tile_size, meta.tile_overlap) == ([7], 512, 128)
    assert meta.extra["checkpoint"] == str(ckpt)
    missing = CliRunner().invoke(app, ["export", str(tmp_path / "none.pt")])
    assert missing.exit_code == 2 and "none.pt" in missing.output


def test_fcos_preset_exports_with_dynamic_size(tmp_path: Path) -> None:
    # Random FCOS heads give many sub-pixel-wide boxes (IoU undefined): compare coordinates.
    torch.manual_seed(0)
    model = build_model("lite0_fcos", pretrained=False, score_thresh=0.05).eval()
    path = export_onnx(model, tmp_path / "fcos.onnx", meta_from_model(model, "lite0_fcos"),
                       trace_size=(192, 256))
    image = torch.rand(3, 176, 208, generator=torch.Generator().manual_seed(1))
    got = OnnxDetector(path)([image])[0]
    with torch.no_grad():
        expected = model([image])[0]
    assert len(expected["boxes"]) > 0
    nearest = torch.cdist(expected["boxes"], got["boxes"], p=float("inf")).min(1).values
    assert float(nearest.max()) < 1e-2
    np.testing.assert_allclose(np.sort(got["scores"].numpy()),
                               np.sort(expected["scores"].numpy()), atol=1e-3)
