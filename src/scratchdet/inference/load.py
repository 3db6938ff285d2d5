"""The one place a model file becomes a predictor.

:func:`load_model` opens a model file (``model.pt``/``.ckpt`` with PyTorch, ``.onnx`` with
ONNX Runtime; ``auto`` picks by suffix) into a :class:`LoadedModel`; :func:`from_module` wraps
a network already in memory (validation during training, tests). :func:`build_predictor`
makes the :class:`~scratchdet.inference.predictor.TiledPredictor` the model's spec asks for:
tiles of its training size over the part region (``input_mode: tiles``), or the whole photo
shrunk to its training size (``input_mode: resize``). Predict, serve, benchmark, validation,
cross-validation and the demo all go through here.

Only :func:`load_model` with the torch runtime imports torch; the ONNX path runs in the
station install (no torch).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchdet.artifact import TRAIN_EXTRA, ArtifactError, ModelSpec, model_id
from scratchdet.inference.onnx_runtime import OnnxDetector
from scratchdet.inference.openvino_runtime import OpenVinoDetector
from scratchdet.inference.predictor import Detector, TiledPredictor
from scratchdet.structures import DEFAULT_MAX_SINGLE

RUNTIMES = ("auto", "torch", "onnx", "openvino")


@dataclass(frozen=True)
class LoadedModel:
    """A detector ready for the predictor, what its file says about it, and where it runs."""

    detector: Detector
    spec: ModelSpec
    runtime: str
    device: str = "cpu"
    model_id: str = "in-memory"


def resolve_runtime(path: str | Path, runtime: str = "auto") -> str:
    """``torch``, ``onnx`` or ``openvino``: ``auto`` is ``onnx`` for a ``.onnx`` file, else
    ``torch``.

    Raises:
        ValueError: an unknown runtime, ``torch`` for an ``.onnx`` file, or ``openvino`` for
            anything else.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    is_onnx = Path(path).suffix.lower() == ".onnx"
    if runtime == "auto":
        return "onnx" if is_onnx else "torch"
    if runtime == "torch" and is_onnx:
        raise ValueError(f"{path}: an ONNX file runs with runtime onnx (or auto)")
    if runtime == "openvino" and not is_onnx:
        raise ValueError(f"{path}: runtime openvino runs an exported .onnx file "
                         "(scratchdet export MODEL -o model.onnx)")
    return runtime


def load_model(path: str | Path, runtime: str = "auto", device: str = "cpu",
               threads: int | None = None) -> LoadedModel:
    """The detector in ``path``. ``onnx`` with a torch model file exports it to a temporary
    file first (needs torch). ``threads`` sets torch's intra-op threads and ONNX Runtime's.

    Raises:
        ArtifactError: the file is missing or not a scratchdet model; torch is needed and
            absent (the message names the extra to install).
        ValueError: unknown runtime, a GPU for ONNX, or no CUDA GPU visible.
    """
    path = Path(path)
    runtime = resolve_runtime(path, runtime)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    if runtime in ("onnx", "openvino"):
        if device != "cpu":
            raise ValueError(f"runtime {runtime} runs on the CPU; use runtime torch for {device}")
        detector = (_onnx_detector(path, threads) if runtime == "onnx"
                    else OpenVinoDetector(path, threads))
        return LoadedModel(detector, detector.spec, runtime, "cpu", model_id(path))
    torch_runtime = _torch_runtime()
    import torch

    if device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"device {device}: no CUDA GPU is visible here")
    if threads:
        torch.set_num_threads(threads)
    model, spec = torch_runtime.load_torch_model(path)
    return LoadedModel(torch_runtime.TorchDetector(model, device), spec, "torch", device,
                       model_id(path))


def _onnx_detector(path: Path, threads: int | None) -> OnnxDetector:
    if path.suffix.lower() == ".onnx":
        return OnnxDetector(path, threads=threads)
    _torch_runtime()  # exporting a .pt needs torch: a clear error when it is absent
    from scratchdet.inference.export import export_checkpoint

    with tempfile.TemporaryDirectory(prefix="scratchdet-onnx-") as tmp:
        onnx_path, _ = export_checkpoint(path, Path(tmp) / "model.onnx")
        return OnnxDetector(onnx_path, threads=threads)  # the session holds the graph


def _torch_runtime() -> Any:
    try:
        from scratchdet.inference import torch_runtime
    except ImportError as err:
        raise ArtifactError(f"the torch runtime is not installed here ({err.name} missing): "
                            f"{TRAIN_EXTRA}, or use an .onnx model") from None
    return torch_runtime


def from_module(model: Any, spec: ModelSpec, device: Any = "cpu") -> LoadedModel:
    """A torchvision-convention network already in memory (e.g. during training)."""
    torch_runtime = _torch_runtime()
    return LoadedModel(torch_runtime.TorchDetector(model, device), spec, "torch", str(device))


def build_predictor(model: LoadedModel, *, batch_size: int = 2, score_threshold: float = 0.05,
                    scale: float = 1.0, max_single: int | None = DEFAULT_MAX_SINGLE,
                    tta: tuple[str, ...] = (), max_side: int | None = None,
                    nested: tuple[str, float, float] | None = None) -> TiledPredictor:
    """The predictor for ``model``'s spec.

    A tiles model runs over the part region in tiles of its training size (or, with
    ``max_single``, inputs of the region's own size; see ``TiledPredictor``). A resize model,
    or any model given ``max_side``, runs once on the whole photo decoded with its long side
    at ``max_side`` (default: the training size ``spec.resize[0]``). ``nested``: the rule for
    boxes nested in a better box (:func:`scratchdet.geometry.nested.refine_nested`).

    Raises:
        ValueError: flips or a scale asked of the whole-photo path.
    """
    spec = model.spec
    if spec.input_mode == "resize" or max_side is not None:
        if tta or scale != 1.0:
            raise ValueError(f"model {model.model_id}: test-time flips and a decode scale need "
                             "a model trained on tiles (input_mode tiles) without max_side")
        return TiledPredictor(model.detector, tile_size=1 << 20, batch_size=1,
                              score_threshold=score_threshold, whole_photo=True,
                              max_side=max_side or spec.resize[0], nested=nested)
    return TiledPredictor(model.detector, tile_size=spec.tile_size,
                          min_overlap=spec.tile_overlap, batch_size=batch_size,
                          score_threshold=score_threshold, scale=scale, max_single=max_single,
                          tta=tta, nested=nested)
