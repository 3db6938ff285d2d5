"""Static int8 quantisation of an exported model (ONNX Runtime's quantisation tools).

:func:`quantize_onnx` calibrates activation ranges on crops of the part regions of training
photos (:func:`calibration_inputs`, located and coloured as the predictor does), then writes
a QDQ graph: per-channel int8 weights, uint8 activations, for the convolutions, their
ReLU6/ReLU and the residual additions of the backbone, FPN and RPN head. The layers at stride
<= 4 stay in float (:data:`KEEP_FLOAT`): quantised, they cost 0.08-0.15 out-of-fold AP50 on
the sample (docs/speed.md); the box head, RoIAlign and the box arithmetic stay float too. The
result is an ordinary ``.onnx`` that carries the source's spec, with ``int8`` facts in its
graph entry; ONNX Runtime runs it like any other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from scratchdet.artifact import ARTIFACT_KEY, ModelSpec, onnx_metadata, read_onnx_spec
from scratchdet.imaging import decode_at_scale, white_polarity_array
from scratchdet.inference.onnx_graph import drop_dead
from scratchdet.inference.onnx_runtime import to_chw_float
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.io import atomic_output

_STRIDE_4 = r"/backbone/body/(conv_stem|bn1|blocks\.[01]/)"  # the stem and blocks 0-1
#: Nodes (by name) that stay in float, per preset: measured for these presets only, out of
#: fold (``scripts/int8_oof.py``; docs/speed.md): the one-stage Lite0 on two seeds (27 Nov),
#: the Lite0 and Lite1 cascades on three (29 Nov).
KEEP_FLOAT: dict[str, str] = {
    "lite0_fpn_fast": _STRIDE_4,
    "lite0_cascade_fast": _STRIDE_4,
    "lite1_cascade_fast": _STRIDE_4,
}
#: One-stage presets and the cascade preset that ``cascade: true`` in their overrides builds (a
#: test checks each pair tensor for tensor): a run of ``--set model=lite1_fpn_fast --set
#: model_overrides.cascade=true`` is a ``lite1_cascade_fast``.
CASCADE_OF: dict[str, str] = {
    "lite0_fpn_fast": "lite0_cascade_fast",
    "lite1_fpn_fast": "lite1_cascade_fast",
}
_ONE_STAGE_OF = {cascade: one for one, cascade in CASCADE_OF.items()}
QUANTIZED_OPS = ("Conv", "Clip", "Relu", "Add")
_QUANTIZED_SCOPE = re.compile(r"/backbone/|/rpn/head/")


def calibration_inputs(photos: Sequence[str | Path], spec: ModelSpec, crop: int = 768,
                       per_photo: int = 1, seed: int = 0) -> list[np.ndarray]:
    """``float32[3, h, w]`` model inputs for calibration: ``per_photo`` random crops of at most
    ``crop`` px a side inside each photo's part region, red parts shown as white ones when
    the spec says so (as :class:`TiledPredictor` prepares its inputs)."""
    if not photos:
        raise ValueError("calibration needs at least one photo")
    rng = np.random.default_rng(seed)
    locator = TiledPredictor(lambda batch: [], red_polarity=spec.red_polarity)
    inputs = []
    for photo in photos:
        image, full = decode_at_scale(photo, 1.0, None)
        factor = locator.reduction(image.width, full[0]) or 1
        region, red = locator.locate(np.asarray(image.reduce(factor)), full)
        x0, y0, x1, y1 = (int(v) for v in region.box)
        for _ in range(per_photo):
            w, h = min(crop, x1 - x0), min(crop, y1 - y0)
            cx, cy = int(rng.integers(x0, x1 - w + 1)), int(rng.integers(y0, y1 - h + 1))
            pixels = np.asarray(image.crop((cx, cy, cx + w, cy + h)))
            inputs.append(to_chw_float(white_polarity_array(pixels) if red else pixels))
    return inputs


def int8_preset(spec: ModelSpec) -> str | None:
    """The preset of ``spec`` as :data:`KEEP_FLOAT` knows it (a one-stage preset with
    ``cascade: true`` is its cascade preset, :data:`CASCADE_OF`), or None where its int8
    quality was not measured. Other overrides (FPN width, score threshold) keep the preset."""
    cascade = spec.overrides.get("cascade")
    name = spec.preset
    if cascade is True:
        name = CASCADE_OF.get(name, name)
    elif cascade is False:
        name = _ONE_STAGE_OF.get(name, name)
    return name if name in KEEP_FLOAT else None


def quantized_nodes(model: onnx.ModelProto, keep_float: str) -> list[str]:
    """Names of the nodes to quantise: :data:`QUANTIZED_OPS` in the backbone, FPN and RPN
    head, except those matching ``keep_float``."""
    keep = re.compile(keep_float)
    return [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS
            and _QUANTIZED_SCOPE.search(n.name) and not keep.search(n.name)]


class _Reader(CalibrationDataReader):
    """The calibration inputs, one per call, as ONNX Runtime's calibrator reads them."""

    def __init__(self, inputs: list[np.ndarray]) -> None:
        self._inputs = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self._inputs, None)
        return None if image is None else {"image": image}


def quantize_onnx(source: str | Path, out: str | Path, photos: Sequence[str | Path], *,
                  crop: int = 768, per_photo: int = 1, seed: int = 0,
                  keep_float: str | None = None) -> dict[str, Any]:
    """Write an int8 copy of the exported model ``source`` to ``out``, calibrated on the
    part regions of ``photos`` (training photos: never those it will be evaluated on).

    ``keep_float`` (a regular expression over node names) replaces the preset's measured
    :data:`KEEP_FLOAT` entry and lifts the check that there is one: for measuring a new preset
    out of fold (``scripts/int8_oof.py``), not for deployment.

    Returns the ``int8`` facts stored in the file's graph entry (nodes quantised, crops).

    Raises:
        ValueError: no photos, or (without ``keep_float``) a model whose int8 quality was
            not measured (:data:`KEEP_FLOAT` lists the presets that were).
        ArtifactError: ``source`` is not a scratchdet ONNX file.
    """
    spec, graph = read_onnx_spec(source)
    preset = int8_preset(spec)
    if keep_float is None:
        if preset is None:
            built = spec.preset + (f" with {dict(spec.overrides)}" if spec.overrides else "")
            raise ValueError(f"int8 is measured for presets {sorted(KEEP_FLOAT)} only, not "
                             f"{built}; export it in float")
        keep_float = KEEP_FLOAT[preset]
    if "int8" in graph:
        raise ValueError(f"{source}: already quantised")
    nodes = quantized_nodes(onnx.load(str(source)), keep_float)
    inputs = calibration_inputs(photos, spec, crop, per_photo, seed)
    facts = {"nodes": len(nodes), "keep_float": keep_float,
             "calibration": {"photos": len(photos), "crops": len(inputs), "crop": crop,
                             "seed": seed, "method": "minmax"},
             "format": "QDQ, per-channel int8 weights, uint8 activations"}
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # the tool's advice to pre-process
    try:
        with atomic_output(Path(out)) as tmp:
            quantize_static(str(source), str(tmp), _Reader(inputs),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS),
                            nodes_to_quantize=nodes, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            _finish(tmp, spec, {**graph, "int8": facts})
    finally:
        root.level = level
    return facts


def _finish(path: Path, spec: ModelSpec, graph: dict[str, Any]) -> None:
    """The quantised file's metadata (the spec and the graph facts) and no dead constants."""
    model = onnx.load(str(path))
    drop_dead(model.graph)
    for entry in [e for e in model.metadata_props if e.key == ARTIFACT_KEY]:
        model.metadata_props.remove(entry)
    entry = model.metadata_props.add()
    entry.key, entry.value = ARTIFACT_KEY, onnx_metadata(spec, graph)
    onnx.save(model, str(path))
