"""Exact graph rewrites of the export (static "same" padding folded into the convolutions) and
the int8 export (``scratchdet export --int8 --calibrate``) on a tiny untrained model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from typer.testing import CliRunner

from scratchdet.artifact import ARTIFACT_KEY, ModelSpec, onnx_metadata, read_onnx_spec
from scratchdet.cli import app
from scratchdet.inference.onnx_graph import fold_pads
from scratchdet.inference.onnx_runtime import OnnxDetector, cpu_has_vnni
from scratchdet.inference.quantize import (
    KEEP_FLOAT,
    calibration_inputs,
    int8_preset,
    quantize_onnx,
    quantized_nodes,
)
from scratchdet.models.backbones import EvenSamePadConv2d, static_same_padding


def _pad_conv_graph(mode: str = "constant", value: float = 0.0) -> onnx.ModelProto:
    """x[1, 2, 8, 8] -> Pad (pads 0,1 / 1,2 on H,W from a Constant -> Cast chain, as the
    TorchScript exporter writes them) -> Conv 3x3 stride 2 with its own pads 1,1,1,1."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(3, 2, 3, 3)).astype(np.float32), "w")
    raw = helper.make_node("Constant", [], ["raw"], value=numpy_helper.from_array(
        np.array([0, 0, 0, 1, 0, 0, 1, 2], np.int32)))
    cast = helper.make_node("Cast", ["raw"], ["pads"], to=TensorProto.INT64)
    val = helper.make_node("Constant", [], ["val"], value=numpy_helper.from_array(
        np.array(value, np.float32)))
    pad = helper.make_node("Pad", ["x", "pads", "val"], ["xp"], mode=mode)
    conv = helper.make_node("Conv", ["xp", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [raw, cast, val, pad, conv], "pad_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_fold_pads_merges_a_constant_zero_pad_into_the_conv_exactly() -> None:
    x = np.random.default_rng(1).normal(size=(1, 2, 8, 8)).astype(np.float32)
    model = _pad_conv_graph()
    expected = _run(model, x)
    assert fold_pads(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv"]  # the pad arithmetic is gone
    (pads,) = [a.ints for a in model.graph.node[0].attribute if a.name == "pads"]
    assert list(pads) == [1, 2, 2, 3]  # [top, left, bottom, right]: 1+0, 1+1, 1+1, 1+2
    got = _run(model, x)
    assert got.shape == expected.shape == (1, 3, 5, 6)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(("mode", "value"), [("reflect", 0.0), ("constant", 1.0)])
def test_fold_pads_leaves_other_pads_alone(mode: str, value: float) -> None:
    model = _pad_conv_graph(mode, value)
    assert fold_pads(model) == 0
    assert "Pad" in [n.op_type for n in model.graph.node]


def test_even_same_pad_conv_is_timm_same_padding_on_even_sides() -> None:
    from timm.layers import Conv2dSame

    torch.manual_seed(0)
    for k, pads in ((3, (0, 1, 0, 1)), (5, (1, 2, 1, 2))):
        net = torch.nn.Sequential(Conv2dSame(4, 6, k, stride=2))
        x = torch.randn(1, 4, 32, 48)
        expected = net(x)
        assert static_same_padding(net) == 1
        assert isinstance(net[0], EvenSamePadConv2d) and net[0].pads == pads
        assert torch.equal(net(x), expected)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 1200x900 photos: a white part on grey with a few dark lines."""
    folder = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        img = np.full((900, 1200, 3), 110, dtype=np.uint8)
        img[200:700, 250:950] = 215 + rng.integers(-8, 8, size=(500, 700, 1))
        for _ in range(4):
            y, x = int(rng.integers(250, 650)), int(rng.integers(300, 700))
            img[y : y + 4, x : x + int(rng.integers(40, 200))] = 40
        paths.append(folder / f"white_{i}.jpg")
        Image.fromarray(img).save(paths[-1], quality=95)
    return paths


def test_calibration_crops_lie_in_the_part_region(photos: list[Path]) -> None:
    from scratchdet.inference.predictor import TiledPredictor

    spec = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), {})
    inputs = calibration_inputs(photos, spec, crop=256, per_photo=2)
    assert len(inputs) == 6
    assert all(x.dtype == np.float32 and x.shape == (3, 256, 256) for x in inputs)
    # a crop larger than the region is the whole region, as the predictor locates it
    (whole,) = calibration_inputs(photos[:1], spec, crop=4000)
    with Image.open(photos[0]) as im:
        pixels = np.asarray(im.convert("RGB"))
    locator = TiledPredictor(lambda batch: [])
    region, _ = locator.locate(pixels[::8, ::8], (1200, 900))
    x0, y0, x1, y1 = region.box
    assert (x0, y0) > (0, 0) and (x1, y1) < (1200, 900)  # the part and a margin, not all
    np.testing.assert_array_equal(whole, pixels[y0:y1, x0:x1].transpose(2, 0, 1) / np.float32(255))


def _rpn_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """The RPN objectness logits of the finest level (downstream of every quantised layer)."""
    name = "/model/rpn/head/cls_logits/Conv_output_0"
    model = onnx.load(str(path))
    model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([name], {"image": x})[0]


def test_export_int8_runs_like_any_onnx_and_stays_close(
    untrained_model: Path, photos: list[Path], tmp_path: Path
) -> None:
    runner = CliRunner()
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    assert runner.invoke(app, ["export", str(untrained_model), "-o", str(fp32)]).exit_code == 0
    result = runner.invoke(app, ["export", str(untrained_model), "-o", str(int8), "--int8",
                                 "--calibrate", str(photos[0].parent)])
    assert result.exit_code == 0, result.output
    assert "int8:" in result.output and "calibrated on 3 crops of 3 photos" in result.output
    spec, graph = read_onnx_spec(int8)
    assert spec.preset == "lite0_fpn_fast" and graph["int8"]["calibration"]["photos"] == 3
    assert graph["int8"]["nodes"] == len(quantized_nodes(onnx.load(str(fp32)),
                                                         KEEP_FLOAT["lite0_fpn_fast"]))
    model = onnx.load(str(int8))
    quantized_inputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    convs = {n.name: n for n in model.graph.node if n.op_type == "Conv"}
    stem = next(n for name, n in convs.items() if "conv_stem" in name)
    late = next(n for name, n in convs.items() if "blocks.4/" in name)
    assert stem.input[1] not in quantized_inputs  # stride <= 4 stays float
    assert late.input[0] in quantized_inputs and late.input[1] in quantized_inputs
    with Image.open(photos[1]) as im:
        image = np.asarray(im.convert("RGB"))[150:750, 200:1000]  # 600x800, any size runs
    (found,) = OnnxDetector(int8, threads=2)([image])  # runs like any exported model
    assert found.boxes.shape == (len(found.scores), 4) and len(found.scores) > 0
    # close to the float graph where the quantised layers end: the untrained model's RPN
    # logits differ by 0.17 (relative L2; correlation 0.984) on an AVX2 CPU without VNNI,
    # where ONNX Runtime's u8 x s8 kernels saturate; a wrong scale or zero point gives ~1
    x = (image.transpose(2, 0, 1) / np.float32(255)).astype(np.float32)
    ref, got = _rpn_logits(fp32, x), _rpn_logits(int8, x)
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) <= 0.3
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] >= 0.97


def test_export_int8_needs_calibration_photos(untrained_model: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", str(untrained_model), "-o", str(out), "--int8"])
    assert result.exit_code == 2 and "--int8 needs --calibrate" in result.output
    result = runner.invoke(app, ["export", str(untrained_model), "-o", str(out), "--int8",
                                 "--calibrate", str(tmp_path / "none")])
    assert result.exit_code == 2 and not out.exists()


def test_cpu_has_vnni_reads_the_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse avx avx2 fma\n")
    assert cpu_has_vnni(info) is False
    info.write_text("flags\t\t: avx2 avx512f avx512_vnni\n")
    assert cpu_has_vnni(info) is True
    info.write_text("flags\t\t: avx2 avx_vnni\n")
    assert cpu_has_vnni(info) is True
    info.write_text("processor\t: 0\n")  # no flags line (another platform's format)
    assert cpu_has_vnni(info) is None
    assert cpu_has_vnni(tmp_path / "absent") is None


@pytest.mark.parametrize("vnni", [False, True])
def test_export_int8_says_when_this_cpu_gains_nothing(
    untrained_model: Path, photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    vnni: bool,
) -> None:
    import scratchdet.inference.load as load
    import scratchdet.inference.onnx_runtime as onnx_runtime

    monkeypatch.setattr(onnx_runtime, "cpu_has_vnni", lambda: vnni)
    out = tmp_path / "int8.onnx"
    result = CliRunner().invoke(app, ["export", str(untrained_model), "-o", str(out), "--int8",
                                      "--calibrate", str(photos[0].parent)])
    assert result.exit_code == 0, result.output
    assert ("this CPU has no VNNI" in result.output) is not vnni and out.is_file()
    # predict, serve and benchmark say it again when they load the int8 file (and only it)
    monkeypatch.setattr(load, "cpu_has_vnni", lambda: vnni)
    note = load.load_model(out, "onnx").note
    assert (note is not None and "int8 model and this CPU has no VNNI" in note) is not vnni
    float_file = tmp_path / "float.onnx"
    assert CliRunner().invoke(app, ["export", str(untrained_model), "-o",
                                    str(float_file)]).exit_code == 0
    assert load.load_model(float_file, "onnx").note is None


def _spec(preset: str, **overrides: object) -> ModelSpec:
    return ModelSpec(preset, ("scratch",), (1,), overrides)


def test_int8_preset_reads_the_cascade_override() -> None:
    assert int8_preset(_spec("lite0_fpn_fast", fpn_channels=16)) == "lite0_fpn_fast"
    assert int8_preset(_spec("lite0_fpn_fast", cascade=True)) == "lite0_cascade_fast"
    assert int8_preset(_spec("lite1_fpn_fast", cascade=True)) == "lite1_cascade_fast"
    assert int8_preset(_spec("lite1_cascade_fast")) == "lite1_cascade_fast"
    assert int8_preset(_spec("lite0_cascade_fast", cascade=False)) == "lite0_fpn_fast"
    assert int8_preset(_spec("lite1_fpn_fast")) is None  # the one-stage Lite1: not measured
    assert int8_preset(_spec("lite2_fpn_fast", cascade=True)) is None


def test_export_int8_of_the_lite1_cascade_quantises_the_backbone_only(
    photos: list[Path], tmp_path: Path
) -> None:
    # written as the cross-validation runs were: lite1_fpn_fast + cascade: true
    from scratchdet.artifact import save_model
    from scratchdet.models.factory import build_model

    torch.manual_seed(0)
    overrides = {"pretrained": False, "fpn_channels": 16, "score_thresh": 0.0, "cascade": True}
    model = build_model("lite1_fpn_fast", **overrides)
    spec = ModelSpec("lite1_fpn_fast", ("scratch",), (1,), overrides, tile_size=512,
                     tile_overlap=128)
    ckpt = save_model(tmp_path / "model.pt", model.state_dict(), spec)
    out = tmp_path / "int8.onnx"
    result = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(out), "--int8",
                                      "--calibrate", str(photos[0].parent),
                                      "--trace-size", "256"])
    assert result.exit_code == 0, result.output
    _, graph = read_onnx_spec(out)
    assert graph["int8"]["keep_float"] == KEEP_FLOAT["lite1_cascade_fast"]
    graph_model = onnx.load(str(out))
    quantized = {n.output[0] for n in graph_model.graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in graph_model.graph.node if n.op_type == "Conv"]
    stride4 = [n for n in convs if re.search(KEEP_FLOAT["lite1_cascade_fast"], n.name)]
    int8 = [n for n in convs if n.input[1] in quantized]
    assert stride4 and not any(n.input[1] in quantized for n in stride4)
    assert int8 and all("/backbone/" in n.name or "/rpn/head/" in n.name for n in int8)
    qdq = [n for n in graph_model.graph.node if n.op_type in ("QuantizeLinear",
                                                               "DequantizeLinear")]
    assert qdq and not [n.name for n in qdq if "roi_heads" in n.name]  # box stages stay float
    with Image.open(photos[1]) as im:
        image = np.asarray(im.convert("RGB"))[150:750, 200:1000]
    (found,) = OnnxDetector(out, threads=2)([image])
    assert found.boxes.shape == (len(found.scores), 4) and len(found.scores) > 0
    bench = CliRunner().invoke(app, ["benchmark", str(out), str(photos[1]), "--repeat", "1",
                                     "--warmup", "0", "--no-seed-baseline", "--out",
                                     str(tmp_path / "bench")])
    assert bench.exit_code == 0, bench.output
    assert "scratchdet (lite1_fpn_fast + cascade int8, onnx)" in bench.output


def test_model_label_names_the_cascade_override_and_int8() -> None:
    from scratchdet.artifact import model_label

    assert model_label(_spec("lite1_cascade_fast")) == "lite1_cascade_fast"
    assert model_label(_spec("lite0_fpn_fast", cascade=True)) == "lite0_fpn_fast + cascade"
    assert model_label(_spec("lite0_fpn_fast", cascade=False)) == "lite0_fpn_fast"
    assert model_label(_spec("lite0_cascade_fast"), {"int8": {}}) == "lite0_cascade_fast int8"
    assert model_label(_spec("lite0_fpn_fast"), {"opset": 17}) == "lite0_fpn_fast"


def test_quantize_refuses_an_unmeasured_model_and_says_what_it_is(
    tmp_path: Path, photos: list[Path]
) -> None:
    model = _pad_conv_graph()
    entry = model.metadata_props.add()
    entry.key, entry.value = ARTIFACT_KEY, onnx_metadata(_spec("lite2_fpn_fast", cascade=True), {})
    source, out = tmp_path / "m.onnx", tmp_path / "int8.onnx"
    onnx.save(model, str(source))
    with pytest.raises(ValueError, match=r"not lite2_fpn_fast with \{'cascade': True\}"):
        quantize_onnx(source, out, photos)
    assert not out.exists()
