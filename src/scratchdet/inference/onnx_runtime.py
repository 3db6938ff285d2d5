"""ONNX Runtime detector: the station's runtime (no torch).

:class:`OnnxDetector` runs a graph written by :func:`scratchdet.inference.export.export_onnx`
(input ``image float[3, H, W]`` 0-1 RGB, any H and W; outputs ``boxes float[K, 4]`` xyxy in
input pixels, ``scores float[K]``, ``labels int64[K]``) with the predictor's
:data:`~scratchdet.inference.predictor.Detector` convention. The model spec is read from the
graph's own metadata (:mod:`scratchdet.artifact`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scratchdet.artifact import ArtifactError, ModelSpec, spec_from_onnx_metadata
from scratchdet.structures import Detections

OUTPUT_NAMES = ("boxes", "scores", "labels")
OPTIMIZATION_LEVELS = ("all", "extended", "basic", "none")


def cpu_has_vnni(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether this CPU has VNNI int8 dot products (``avx512_vnni`` or ``avx_vnni`` among the
    flags of ``cpuinfo``); None where that cannot be read (not Linux). Without VNNI, ONNX
    Runtime's int8 convolutions run no faster than float (docs/speed.md)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split()}
    if not flags:
        return None
    return bool(flags & {"avx512_vnni", "avx_vnni"})


def to_chw_float(image: np.ndarray) -> np.ndarray:
    """``uint8[H, W, 3]`` -> contiguous ``float32[3, H, W]`` in [0, 1] (the graph's input)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected images as uint8 arrays [H, W, 3], got {image.shape}")
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    chw /= np.float32(255)
    return chw


class OnnxDetector:
    """ONNX Runtime detector on the CPU.

    Args:
        path: a file written by ``scratchdet export``.
        threads: intra-op threads (``None``/0: ONNX Runtime's default, one per core).
        optimization: graph optimisation level, one of :data:`OPTIMIZATION_LEVELS`.

    Raises:
        ArtifactError: the file is missing, unreadable or carries no scratchdet spec.
    """

    def __init__(
        self, path: str | Path, threads: int | None = None, optimization: str = "all"
    ) -> None:
        import onnxruntime as ort

        if optimization not in OPTIMIZATION_LEVELS:
            raise ValueError(f"optimization must be one of {OPTIMIZATION_LEVELS}, "
                             f"got {optimization!r}")
        levels = dict(zip(OPTIMIZATION_LEVELS, (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            ort.GraphOptimizationLevel.ORT_DISABLE_ALL), strict=True))
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactError(f"{self.path}: ONNX file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 0)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = levels[optimization]
        # Idle pool threads otherwise spin for a while after each run, taking the CPU that
        # decoding and localisation need on a small machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ArtifactError(f"{self.path}: not a readable ONNX file ({err})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.spec: ModelSpec
        self.graph: dict[str, Any]
        self.spec, self.graph = spec_from_onnx_metadata(props, str(self.path))

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        results = []
        for image in images:
            boxes, scores, labels = self.session.run(
                list(OUTPUT_NAMES), {"image": to_chw_float(image)})
            results.append(Detections.from_arrays(boxes, scores, labels))
        return results
