"""TiledPredictor's fast options (scale, one input per region) and ONNX Runtime inside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from scratchdet.inference.localize import LocalizeConfig
from scratchdet.inference.onnx import OnnxDetector, export_onnx, meta_from_model
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.inference.tiling import region_pieces
from scratchdet.models.factory import build_model


class DarkBox(torch.nn.Module):
    """Fake detector: the box around the dark pixels of each input; records input sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for img in images:
            self.sizes.append((img.shape[2], img.shape[1]))
            ys, xs = torch.nonzero(img.mean(0) < 0.35, as_tuple=True)
            n = int(len(xs) > 0)
            if not n:
                xs = ys = torch.zeros(1)
            box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]).float()
            out.append({"boxes": box[:n], "scores": torch.tensor([0.9])[:n],
                        "labels": torch.tensor([1])[:n]})
        return out


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    """1600x1200 grey photo, white part 480..1120 x 360..840, dark scratch 700..900 x 596..608."""
    img = np.full((1200, 1600, 3), 120, dtype=np.uint8)
    img[360:840, 480:1120] = 225
    img[596:608, 700:900] = 20
    path = tmp_path / "white_photo.jpg"
    Image.fromarray(img).save(path, quality=95)
    return path


def test_region_as_one_input_and_half_scale(jpeg: Path) -> None:
    loc = LocalizeConfig(margin=64)
    tiled = TiledPredictor(DarkBox(), tile_size=256, min_overlap=64, localize=loc).predict(jpeg)
    model = DarkBox()
    single = TiledPredictor(model, tile_size=256, min_overlap=64, localize=loc,
                            max_single=1024).predict(jpeg)
    assert len(tiled.tiles) > 1 and single.tiles == [single.region.box]
    assert model.sizes[-1] == (single.region.box[2] - single.region.box[0],
                               single.region.box[3] - single.region.box[1])
    half_model = DarkBox()
    half = TiledPredictor(half_model, tile_size=256, min_overlap=64, localize=loc,
                          max_single=1024, scale=0.5).predict(jpeg)
    assert half.region == single.region  # the region is always in original pixels
    x0, _, x1, _ = half.tiles[0]  # tiles are in decoded (half-scale) pixels
    assert abs(x0 - single.region.box[0] / 2) <= 1 and abs(x1 - single.region.box[2] / 2) <= 1
    for pred in (tiled, single, half):
        np.testing.assert_allclose(pred.detections["boxes"].numpy(), [[700, 596, 900, 608]],
                                   atol=4)
    # a region larger than max_single: the fewest large pieces, the scratch cut by them fused
    pieces = TiledPredictor(DarkBox(), tile_size=256, min_overlap=64, localize=loc,
                            max_single=512).predict(jpeg)
    assert pieces.tiles == region_pieces(single.region.box, 512, 64)
    assert len(pieces.tiles) == 4 and len(tiled.tiles) > 4
    np.testing.assert_allclose(pieces.detections["boxes"].numpy(), [[700, 596, 900, 608]],
                               atol=4)
    with pytest.raises(ValueError, match="scale"):
        TiledPredictor(DarkBox(), scale=0)


def test_onnx_detector_in_predictor_matches_torch(sample: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("lite0_fpn_fast", score_thresh=0.5).eval()
    path = export_onnx(model, tmp_path / "m.onnx", meta_from_model(model, "lite0_fpn_fast"))
    photo = sample / "val" / "white_DSC_0439.JPG"
    options = {"scale": 0.25, "max_single": 2048, "batch_size": 1}
    expected = TiledPredictor(model, **options).predict(photo)
    got = TiledPredictor(OnnxDetector(path, threads=2), **options).predict(photo)
    assert got.tiles == expected.tiles and len(got.tiles) == 1
    e, g = expected.detections, got.detections
    assert len(e["boxes"]) > 0 and abs(len(e["boxes"]) - len(g["boxes"])) <= 2
    iou = box_iou(e["boxes"], g["boxes"])
    close = (e["scores"][:, None] - g["scores"][None, :]).abs() <= 1e-3
    matched = ((iou >= 0.9) & close).any(1)
    assert bool(matched[e["scores"] >= 0.5 + 1e-3].all())
    assert float(e["boxes"][:, 2].max()) > 4608 * 0.25  # boxes in original pixels
