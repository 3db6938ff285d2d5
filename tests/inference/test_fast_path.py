"""TiledPredictor's fast options (scale, one input per region) and ONNX Runtime inside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from scratchdet.artifact import ModelSpec
from scratchdet.geometry.localize import LocalizeConfig
from scratchdet.geometry.tiling import region_pieces
from scratchdet.inference.export import export_onnx
from scratchdet.inference.load import build_predictor, from_module, load_model
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.models.factory import build_model
from scratchdet.structures import Detections


class DarkBox:
    """Fake detector: the box around the dark pixels of each input; records input sizes."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for img in images:
            self.sizes.append((img.shape[1], img.shape[0]))
            ys, xs = np.nonzero(img.mean(2) < 0.35 * 255)
            if not len(xs):
                out.append(Detections.empty())
                continue
            out.append(Detections.from_arrays(
                [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], [0.9], [1]))
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
        np.testing.assert_allclose(pred.detections.boxes, [[700, 596, 900, 608]], atol=4)
    # a region larger than max_single: the fewest large pieces, the scratch cut by them fused
    pieces = TiledPredictor(DarkBox(), tile_size=256, min_overlap=64, localize=loc,
                            max_single=512).predict(jpeg)
    assert pieces.tiles == region_pieces(single.region.box, 512, 64)
    assert len(pieces.tiles) == 4 and len(tiled.tiles) > 4
    np.testing.assert_allclose(pieces.detections.boxes, [[700, 596, 900, 608]], atol=4)
    with pytest.raises(ValueError, match="scale"):
        TiledPredictor(DarkBox(), scale=0)


def test_onnx_detector_in_predictor_matches_torch(sample: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("lite0_fpn_fast", score_thresh=0.5).eval()
    spec = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), {"score_thresh": 0.5})
    path = export_onnx(model, tmp_path / "m.onnx", spec)
    photo = sample / "val" / "white_DSC_0439.JPG"
    options = {"scale": 0.25, "max_single": 2048, "batch_size": 1}
    expected = build_predictor(from_module(model, spec), **options).predict(photo)
    got = build_predictor(load_model(path, threads=2), **options).predict(photo)
    assert got.tiles == expected.tiles and len(got.tiles) == 1
    e, g = expected.detections, got.detections
    assert len(e) > 0 and abs(len(e) - len(g)) <= 2
    iou = box_iou(torch.from_numpy(e.boxes), torch.from_numpy(g.boxes)).numpy()
    close = np.abs(e.scores[:, None] - g.scores[None, :]) <= 1e-3
    matched = ((iou >= 0.9) & close).any(1)
    assert bool(matched[e.scores >= 0.5 + 1e-3].all())
    assert float(e.boxes[:, 2].max()) > 4608 * 0.25  # boxes in original pixels
