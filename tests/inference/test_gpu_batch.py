"""The batched (GPU) predictor, on the CPU: same detections as the single-photo predictor."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torchvision.ops import box_iou

from scratchdet.inference.gpu_batch import (
    BatchedPredictor,
    exif_orientation,
    orient,
)
from scratchdet.inference.load import build_predictor, load_model
from scratchdet.inference.torch_runtime import load_torch_model
from scratchdet.models.batching import HalfBackbone


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_matches_pil_exif_transpose(orientation: int) -> None:
    pixels = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    got = orient(torch.from_numpy(pixels).permute(2, 0, 1), orientation).permute(1, 2, 0)
    assert np.array_equal(got.numpy(), expected)


def test_exif_orientation_read_from_the_bytes() -> None:
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (8, 4)).save(buf, "JPEG", exif=exif)
    assert exif_orientation(buf.getvalue()) == 6
    assert exif_orientation(b"not an image") == 1


def test_half_backbone_returns_float32_features() -> None:
    conv = torch.nn.Conv2d(3, 4, 3)

    class Body(torch.nn.Module):
        out_channels = 4

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"0": conv(x)}

    half = HalfBackbone(Body(), torch.bfloat16)
    x = torch.rand(1, 3, 16, 16)
    out = half(x)["0"]
    assert out.dtype == torch.float32 and half.out_channels == 4
    assert torch.allclose(out, conv(x), atol=0.05)  # bf16: about 3 significant digits


def _matched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Best IoU of each box of ``a`` with ``b``."""
    if not len(a):
        return np.zeros(0)
    return box_iou(torch.as_tensor(a), torch.as_tensor(b)).max(1).values.numpy()


@pytest.fixture
def photos(sample: Path) -> list[Path]:
    return sorted((sample / "val").glob("*.JPG"))[::7][:3]  # red and white parts


def test_batched_one_at_a_time_equals_single_photo(untrained_model: Path, photos: list[Path],
                                                   tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    png = tmp_path / "small.png"
    Image.open(photos[0]).reduce(4).save(png)
    single = build_predictor(load_model(untrained_model, "torch"), score_threshold=0.3)
    model, _ = load_torch_model(untrained_model)
    batched = BatchedPredictor(single, model, device="cpu", batch_size=1, snap=1)
    results = dict(batched.predict_many([*photos, bad, png]))
    assert list(results) == [*photos, bad, png]  # in order, the bad file in its place
    assert isinstance(results[bad], ValueError) and "broken.jpg" in str(results[bad])
    for photo in [*photos, png]:
        got, want = results[photo], single.predict(photo)
        assert got.region == want.region and got.tiles == want.tiles
        assert len(want.detections) > 0
        np.testing.assert_array_equal(got.detections.boxes, want.detections.boxes)
        np.testing.assert_array_equal(got.detections.scores, want.detections.scores)
        assert set(got.timings) == {"decode", "localise", "model", "merge", "total"}


class ShapeLog(torch.nn.Module):
    """Wraps a detector; records the input shapes of each call."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.calls, self.tuned = model, [], []
        self.transform, self.rpn = model.transform, model.rpn

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.calls.append([tuple(x.shape) for x in images])
        self.tuned.append(torch.backends.cudnn.benchmark)
        return self.model(images)

    @property
    def backbone(self) -> torch.nn.Module:
        return self.model.backbone


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_padded_batch_gives_each_photo_its_own_detections(
        untrained_model: Path, photos: list[Path], channels_last: bool) -> None:
    """Inputs of different sizes in one call (padded to a multiple of 128) score as alone."""
    single = build_predictor(load_model(untrained_model, "torch"), score_threshold=0.3)
    model = ShapeLog(load_torch_model(untrained_model)[0])
    batched = BatchedPredictor(single, model, device="cpu", batch_size=8, snap=128,
                               channels_last=channels_last)
    results = dict(batched.predict_many(photos))
    [shapes] = batched.model.calls  # its copy; 3 photos, 4 inputs (the red rail in 2): 1 call
    assert len(shapes) == 4 and len(set(shapes)) > 1
    for photo in photos:
        got, want = results[photo], single.predict(photo)
        assert got.tiles == want.tiles and len(want.detections) > 0
        assert len(got.detections) == len(want.detections)
        assert _matched(want.detections.boxes, got.detections.boxes).min() > 0.999
        np.testing.assert_allclose(got.detections.scores, want.detections.scores, atol=1e-4)


def test_buckets_batch_one_shape_at_a_time_and_keep_the_photo_order(
        untrained_model: Path, photos: list[Path]) -> None:
    """With buckets, every model call holds batch_size inputs of one padded shape (empty
    canvases fill a short one); each photo still gets its own detections, in order."""
    single = build_predictor(load_model(untrained_model, "torch"), score_threshold=0.3)
    model = ShapeLog(load_torch_model(untrained_model)[0])
    batched = BatchedPredictor(single, model, device="cpu", batch_size=2, snap=256,
                               buckets=True, max_waiting=2)
    results = list(batched.predict_many(photos))
    assert [p for p, _ in results] == photos
    calls = batched.model.calls
    assert all(len(shapes) == 2 for shapes in calls)
    side = batched.mask.divisible  # an empty canvas is side x side
    real = [s for shapes in calls for s in shapes if s[1] > side]
    assert len(real) == 4 and len(calls) == 3  # 4 inputs (the red rail in 2): 2 buckets of 1
    for shapes in calls:  # one bucket per call (an empty canvas pads to any bucket)
        assert len({(-(-h // 256), -(-w // 256)) for _, h, w in shapes if h > side}) == 1
    for photo, got in results:
        want = single.predict(photo)
        assert got.tiles == want.tiles and len(got.detections) == len(want.detections)
        assert _matched(want.detections.boxes, got.detections.boxes).min() > 0.999
        np.testing.assert_allclose(got.detections.scores, want.detections.scores, atol=1e-4)


def test_autotune_buckets_by_512_and_tunes_only_its_own_calls(
        untrained_model: Path, photos: list[Path]) -> None:
    single = build_predictor(load_model(untrained_model, "torch"), score_threshold=0.3)
    model = ShapeLog(load_torch_model(untrained_model)[0])
    batched = BatchedPredictor(single, model, device="cpu", batch_size=2, autotune=True)
    assert batched.buckets and batched.model.transform.size_divisible == 512
    assert not torch.backends.cudnn.benchmark
    results = list(batched.predict_many(photos[:1]))
    assert [p for p, _ in results] == photos[:1]
    assert batched.model.tuned == [True] and not torch.backends.cudnn.benchmark
    [shapes] = batched.model.calls  # the photo's input and an empty canvas (batch of 2)
    side = batched.mask.divisible
    assert len(shapes) == 2 and shapes[0][1] > side and shapes[1] == (3, side, side)


def test_batched_refuses_what_it_does_not_do(untrained_model: Path) -> None:
    loaded = load_model(untrained_model, "torch")
    model, _ = load_torch_model(untrained_model)
    with pytest.raises(ValueError, match="without flips"):
        BatchedPredictor(build_predictor(loaded, tta=("h",)), model, device="cpu")
    with pytest.raises(ValueError, match="amp must be"):
        BatchedPredictor(build_predictor(loaded), model, device="cpu", amp="int8")


def test_gpu_benchmark_runs_on_the_cpu_with_exact_parity(untrained_model: Path,
                                                         photos: list[Path]) -> None:
    from scratchdet.inference import gpu_benchmark

    runs = gpu_benchmark.run_gpu_benchmark(untrained_model, photos[:2], "cpu", batch=2,
                                           amps=(None,), repeat=1, seed=False)
    assert [r.name for r in runs] == ["single (torch, float32)", "batched 2 (float32)"]
    parity = runs[1].parity
    assert parity is not None and parity["boxes"] > 0
    assert parity["within_1e-3"] == parity["boxes"] and parity["max_best_score_change"] < 1e-4
    assert runs[1].photos == 2 and runs[1].photos_per_s > 0
    assert runs[1].warmup_s is not None and runs[1].warmup_s > 0 and runs[0].warmup_s is None
    lines = gpu_benchmark.summary_lines(runs, "cpu")
    assert lines[0] == "device: cpu" and lines[-1].startswith("best: batched 2 (float32)")
    assert "warm-up pass" in lines[2] and "warm-up" not in lines[1]


def test_benchmark_on_a_missing_gpu_is_a_usage_error(untrained_model: Path,
                                                     photos: list[Path]) -> None:
    from typer.testing import CliRunner

    from scratchdet.cli import app

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    result = CliRunner().invoke(app, ["benchmark", str(untrained_model), str(photos[0]),
                                      "--device", "cuda"])
    assert result.exit_code == 2
    assert "no CUDA GPU is visible here" in result.output


def test_predict_photos_takes_a_batched_predictor(untrained_model: Path, photos: list[Path],
                                                  tmp_path: Path) -> None:
    from scratchdet.inference import run

    loaded = load_model(untrained_model, "torch")
    single = build_predictor(loaded, score_threshold=0.3)
    assert run.batched_on_gpu(loaded, single, 4) is single  # on the CPU: the predictor itself
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    ids = {p.name: k for k, p in enumerate([*photos[:2], bad], start=1)}
    batched = BatchedPredictor(single, load_torch_model(untrained_model)[0], "cpu", 2)
    got = run.predict_photos(batched, [*photos[:2], bad], ids, [1])
    want = run.predict_photos(single, [*photos[:2], bad], ids, [1])
    assert [r.path for r in got] == [r.path for r in want]
    assert got[2].error is not None and "broken.jpg" in got[2].error and want[2].error
    for a, b in zip(got[:2], want[:2], strict=True):
        assert a.region == b.region and a.tiles == b.tiles
        assert [d["bbox"] for d in a.detections] == [d["bbox"] for d in b.detections]
        np.testing.assert_allclose([d["score"] for d in a.detections],
                                   [d["score"] for d in b.detections], atol=1e-4)


def test_a_decompression_bomb_is_refused_with_the_single_paths_message(
        untrained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jpeg, png = tmp_path / "big.jpg", tmp_path / "big.png"
    Image.new("RGB", (200, 150), (128, 128, 128)).save(jpeg)
    Image.new("RGB", (200, 150), (128, 128, 128)).save(png)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 30000 pixels: over twice the limit
    single = build_predictor(load_model(untrained_model, "torch"))
    batched = BatchedPredictor(single, load_torch_model(untrained_model)[0], "cpu", 2)
    results = dict(batched.predict_many([jpeg, png]))
    for path in (jpeg, png):
        with pytest.raises(ValueError) as alone:
            single.predict(path)
        assert isinstance(results[path], ValueError)
        assert str(path) in str(results[path]) and "bomb" in str(results[path])
        assert str(results[path]) == str(alone.value)
