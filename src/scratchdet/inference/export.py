"""ONNX export of a whole detector (dynamic height and width); needs torch.

The whole torchvision-convention model (normalise, pad to the stride, optional resize, backbone,
neck, RPN, RoI heads, box decoding and NMS) is traced once into an ONNX graph whose input is one
image ``float[3, H, W]`` (0-1 RGB, any H and W) and whose outputs are ``boxes float[K, 4]``
(xyxy, input pixels), ``scores float[K]`` and ``labels int64[K]``. torchvision's detection code
is written to trace with symbolic sizes (anchors, padding, resize scale), and the parity tests
check that an export traced at one size reproduces PyTorch at other sizes.

The file carries the model spec (:mod:`scratchdet.artifact`) and facts about the graph
(:func:`graph_facts`: normalisation, stride padding, resize, score/NMS thresholds) in its
``metadata_props``; :class:`scratchdet.inference.onnx_runtime.OnnxDetector` runs it without
torch.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scratchdet.artifact import ARTIFACT_KEY, ModelSpec, onnx_metadata
from scratchdet.inference.onnx_graph import fold_pads
from scratchdet.inference.onnx_runtime import OUTPUT_NAMES
from scratchdet.inference.torch_runtime import load_torch_model
from scratchdet.io import atomic_output
from scratchdet.models.backbones import static_same_padding

OPSET = 17


def graph_facts(model: nn.Module, opset: int = OPSET) -> dict[str, Any]:
    """What the traced graph does besides the network: read off a built detector."""
    tf = model.transform
    post = getattr(model, "roi_heads", model)  # RoI heads of R-CNNs; FCOS keeps them itself
    return {
        "image_mean": [float(v) for v in tf.image_mean],
        "image_std": [float(v) for v in tf.image_std],
        "size_divisible": int(tf.size_divisible),
        "resize": bool(getattr(tf, "resize_enabled", True)),
        "min_size": int(tf.min_size[0]),
        "max_size": int(tf.max_size),
        "score_threshold": float(post.score_thresh),
        "nms_threshold": float(post.nms_thresh),
        "opset": opset,
    }


def _traceable(model: nn.Module) -> nn.Module:
    """``model``, or a copy with its TF "same" paddings fixed (:func:`static_same_padding`)
    when the transform pads every input to a multiple of 32: the graph then pads by constants,
    folded into the convolutions (:func:`fold_pads`), instead of computing each padding from
    the input's shape (exact; about 1.3x faster in ONNX Runtime on 2 cores, docs/speed.md)."""
    if int(model.transform.size_divisible) % 32:
        return model
    fixed = copy.deepcopy(model)
    return fixed if static_same_padding(fixed) else model


class _SingleImage(nn.Module):
    """``image[3, H, W] -> (boxes, scores, labels)``: a fixed output order for the graph."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model([image])[0]
        return out["boxes"], out["scores"], out["labels"]


def export_onnx(
    model: nn.Module,
    path: str | Path,
    spec: ModelSpec,
    trace_size: tuple[int, int] = (512, 512),
    extra: dict[str, Any] | None = None,
) -> Path:
    """Trace ``model`` (eval mode) into ``path`` with dynamic height/width; atomic write.

    Timm's run-time "same" paddings are fixed and folded into the convolutions
    (:func:`_traceable`); the results are those of ``model``.

    Args:
        model: a torchvision-convention detector.
        path: the ``.onnx`` file to write (its folder is created).
        spec: stored in the file's ``metadata_props`` under ``scratchdet`` (with
            :func:`graph_facts`).
        trace_size: ``(height, width)`` of the random image the graph is traced with.
        extra: more facts for the graph entry of the metadata (e.g. the source file).
    """
    import onnx

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(3, *trace_size, generator=gen)
    with atomic_output(out) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings on torchvision's size arithmetic
        torch.onnx.export(
            _SingleImage(_traceable(model)).eval(), (example,), str(tmp), opset_version=OPSET,
            dynamo=False, input_names=["image"], output_names=list(OUTPUT_NAMES),
            dynamic_axes={"image": {1: "height", 2: "width"},
                          **{name: {0: "detections"} for name in OUTPUT_NAMES}},
        )
        graph = onnx.load(str(tmp))
        fold_pads(graph)
        entry = graph.metadata_props.add()
        entry.key, entry.value = ARTIFACT_KEY, onnx_metadata(
            spec, {**graph_facts(model), **(extra or {})})
        onnx.save(graph, str(tmp))
    return out


def export_checkpoint(
    checkpoint: str | Path, path: str | Path, trace_size: tuple[int, int] = (512, 512),
    extra: dict[str, Any] | None = None,
) -> tuple[Path, ModelSpec]:
    """Export the detector stored in a ``.ckpt``/``model.pt``; its spec goes along, and
    ``extra`` facts into the graph's metadata (besides ``exported_from``)."""
    model, spec = load_torch_model(checkpoint)
    facts = {"exported_from": str(checkpoint), **(extra or {})}
    return export_onnx(model, path, spec, trace_size, facts), spec


def export_int8(checkpoint: str | Path, path: str | Path, photos: Sequence[str | Path],
                trace_size: tuple[int, int] = (512, 512)) -> tuple[Path, dict[str, Any]]:
    """Export the detector of ``checkpoint`` to ``path`` as int8 (:func:`export_checkpoint`,
    then :func:`~scratchdet.inference.quantize.quantize_onnx` calibrated on ``photos``, its
    training photos); (path, the int8 facts). No float file is left behind."""
    from scratchdet.inference.quantize import quantize_onnx

    path = Path(path)
    float_path = path.with_name(f".{path.name}.float.onnx")
    try:
        export_checkpoint(checkpoint, float_path, trace_size)
        facts = quantize_onnx(float_path, path, photos)
    finally:
        float_path.unlink(missing_ok=True)
    return path, facts
