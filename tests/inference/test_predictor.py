"""TiledPredictor end to end with a fake detector on a synthetic photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scratchdet.inference.localize import LocalizeConfig
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.inference.tiling import tile_grid


class DarkPixels(torch.nn.Module):
    """Fake detector: one box around the dark pixels of each tile (score 0.9, label 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.calls.append(len(images))
        out = []
        for img in images:
            assert img.dtype == torch.float32 and img.shape[0] == 3 and img.max() <= 1
            ys, xs = torch.nonzero(img.mean(0) < 0.3, as_tuple=True)
            if len(xs):
                box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]).float()
                out.append(
                    {"boxes": box, "scores": torch.tensor([0.9]), "labels": torch.tensor([1])}
                )
            else:
                out.append(
                    {
                        "boxes": torch.zeros(0, 4),
                        "scores": torch.zeros(0),
                        "labels": torch.zeros(0, dtype=torch.int64),
                    }
                )
        return out


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """1600x1200 grey photo, white part at 480..1120 x 360..840, dark scratch 700..900 x 600."""
    img = np.full((1200, 1600, 3), 120, dtype=np.uint8)
    img[360:840, 480:1120] = 225
    img[598:603, 700:900] = 20
    path = tmp_path / "white_photo.png"
    Image.fromarray(img).save(path)
    return path


def test_scratch_across_tile_edges_is_found_once_in_photo_pixels(photo: Path) -> None:
    model = DarkPixels()
    pred = TiledPredictor(
        model, tile_size=256, min_overlap=64, batch_size=3, localize=LocalizeConfig(margin=64)
    ).predict(photo)
    assert not pred.region.fallback
    x0, y0, x1, y1 = pred.region.box
    assert x0 <= 480 and y0 <= 360 and x1 >= 1120 and y1 >= 840
    assert len(pred.tiles) < len(tile_grid(1600, 1200, 256, 64))  # region tiles < 48
    det = pred.detections
    assert set(det) == {"boxes", "scores", "labels"}
    # the 200 px scratch is longer than the 64 px overlap: cut pieces fused into one box
    np.testing.assert_allclose(det["boxes"].numpy(), [[700, 598, 900, 603]])
    assert det["labels"].tolist() == [1] and det["scores"].dtype == torch.float32
    assert set(pred.timings) == {"decode", "localise", "model", "merge", "total"}
    assert model.calls[0] == 3 and sum(model.calls[: len(model.calls) // 2 + 1]) >= 3


def test_whole_photo_mode_and_bad_input(photo: Path, tmp_path: Path) -> None:
    pred = TiledPredictor(DarkPixels(), tile_size=512, min_overlap=128, whole_photo=True)
    out = pred.predict(Image.open(photo))
    assert out.region.box == (0, 0, 1600, 1200) and len(out.tiles) == 12
    np.testing.assert_allclose(out.detections["boxes"].numpy(), [[700, 598, 900, 603]])
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    with pytest.raises(ValueError, match=r"bad\.jpg"):
        pred.predict(bad)
    with pytest.raises(ValueError, match="batch_size"):
        TiledPredictor(DarkPixels(), batch_size=0)
