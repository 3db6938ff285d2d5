"""OpenVINO detector: the exported ONNX graph run by Intel's OpenVINO Runtime on the CPU.

An optional extra (``pip install 'scratchdet[openvino]'``, no torch). It reads the same
``model.onnx`` as :class:`scratchdet.inference.onnx_runtime.OnnxDetector` and has the same
convention. OpenVINO's CPU plugin defaults to bfloat16 arithmetic where the CPU has it; this
detector asks for float32, which reproduces ONNX Runtime (parity test: boxes IoU >= 0.9,
scores within 1e-3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scratchdet.artifact import ArtifactError, ModelSpec, read_onnx_spec
from scratchdet.inference.onnx_runtime import OUTPUT_NAMES, to_chw_float
from scratchdet.structures import Detections

OPENVINO_EXTRA = "pip install 'scratchdet[openvino]'"


class OpenVinoDetector:
    """OpenVINO Runtime detector on the CPU.

    Args:
        path: a file written by ``scratchdet export``.
        threads: inference threads (``None``/0: OpenVINO's default).

    Raises:
        ArtifactError: the file is missing, unreadable, carries no scratchdet spec, or
            OpenVINO is not installed (the message names the extra).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ArtifactError(f"runtime openvino is not installed here: {OPENVINO_EXTRA}") \
                from None
        self.path = Path(path)
        self.spec: ModelSpec
        self.graph: dict[str, Any]
        self.spec, self.graph = read_onnx_spec(self.path)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        except Exception as err:
            raise ArtifactError(f"{self.path}: OpenVINO cannot compile it ({err})") from None
        self.request = self.compiled.create_infer_request()
        self.outputs = [self.compiled.output(name) for name in OUTPUT_NAMES]

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        results = []
        for image in images:
            out = self.request.infer([to_chw_float(image)])
            boxes, scores, labels = (out[o] for o in self.outputs)
            results.append(Detections.from_arrays(boxes, scores, labels))
        return results
