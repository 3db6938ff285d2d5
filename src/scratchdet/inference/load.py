"""The one place a model file becomes a predictor.

:func:`load_model` opens a model file into a :class:`LoadedModel`: an ``.onnx`` with ONNX
Runtime; a ``model.pt``/``.ckpt`` with PyTorch, or (runtime ``auto`` on the CPU, or ``onnx``)
with ONNX Runtime on an export cached beside it (:func:`cached_onnx`: ``model.pt`` ->
``model.pt.onnx``, made once, made again when the source changes, falling back to PyTorch
with a note when the export fails); :func:`from_module` wraps
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
from scratchdet.inference.onnx_runtime import OnnxDetector, cpu_has_vnni
from scratchdet.inference.openvino_runtime import OpenVinoDetector
from scratchdet.inference.predictor import Detector, TiledPredictor
from scratchdet.structures import DEFAULT_MAX_SINGLE

RUNTIMES = ("auto", "torch", "onnx", "openvino")


@dataclass(frozen=True)
class LoadedModel:
    """A detector ready for the predictor, what its file says about it, and where it runs;
    ``note``: something the user should hear about how it was loaded (``None``: nothing)."""

    detector: Detector
    spec: ModelSpec
    runtime: str
    device: str = "cpu"
    model_id: str = "in-memory"
    note: str | None = None


def resolve_runtime(path: str | Path, runtime: str = "auto", device: str = "cpu") -> str:
    """``torch``, ``onnx`` or ``openvino``: ``auto`` is ``onnx`` for a ``.onnx`` file or any
    model on the CPU (a ``model.pt`` through its cached export), else ``torch``.

    Raises:
        ValueError: an unknown runtime, ``torch`` for an ``.onnx`` file, or ``openvino`` for
            anything else.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    is_onnx = Path(path).suffix.lower() == ".onnx"
    if runtime == "auto":
        return "onnx" if is_onnx or device == "cpu" else "torch"
    if runtime == "torch" and is_onnx:
        raise ValueError(f"{path}: an ONNX file runs with runtime onnx (or auto)")
    if runtime == "openvino" and not is_onnx:
        raise ValueError(f"{path}: runtime openvino runs an exported .onnx file "
                         "(scratchdet export MODEL -o model.onnx)")
    return runtime


def load_model(path: str | Path, runtime: str = "auto", device: str = "cpu",
               threads: int | None = None) -> LoadedModel:
    """The detector in ``path``. ``auto``: ONNX Runtime on the CPU, PyTorch on a GPU; a torch
    model file runs with ONNX Runtime through its cached export (:func:`cached_onnx`; needs
    torch; with ``auto`` a failed export falls back to PyTorch, saying so in ``note``).
    ``threads`` sets torch's intra-op threads and ONNX Runtime's (``None``/0: their default).

    Raises:
        ArtifactError: the file is missing or not a scratchdet model; torch is needed and
            absent (the message names the extra to install).
        ValueError: unknown runtime, a GPU for ONNX, or no CUDA GPU visible.
    """
    path = Path(path)
    asked, runtime = runtime, resolve_runtime(path, runtime, device)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    if runtime == "openvino" or (runtime == "onnx" and path.suffix.lower() == ".onnx"):
        if device != "cpu":
            raise ValueError(f"runtime {runtime} runs on the CPU; use runtime torch for {device}")
        detector = (OnnxDetector(path, threads=threads) if runtime == "onnx"
                    else OpenVinoDetector(path, threads))
        return LoadedModel(detector, detector.spec, runtime, "cpu", model_id(path),
                           _int8_note(path, detector))
    note = None
    if runtime == "onnx":
        if device != "cpu":
            raise ValueError(f"runtime onnx runs on the CPU; use runtime torch for {device}")
        try:
            onnx, note = _exported_detector(path, threads)
            return LoadedModel(onnx, onnx.spec, "onnx", "cpu", model_id(path), note)
        except Exception as err:  # the export failed: PyTorch runs the model file itself
            if asked != "auto" or isinstance(err, ArtifactError):
                raise
            note = (f"note: {path}: ONNX export failed ({type(err).__name__}: {err}); "
                    "running it with PyTorch")
    return _torch_model(path, device, threads, note)


def _int8_note(path: Path, detector: OnnxDetector | OpenVinoDetector) -> str | None:
    """A note when an int8 export runs on a CPU without VNNI, where it gains nothing."""
    if "int8" not in detector.graph or cpu_has_vnni() is not False:
        return None
    return (f"note: {path} is an int8 model and this CPU has no VNNI (avx512_vnni, avx_vnni): "
            "it runs no faster than the float export here (docs/speed.md)")


def _torch_model(path: Path, device: str, threads: int | None, note: str | None) -> LoadedModel:
    torch_runtime = _torch_runtime()
    import torch

    if device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"device {device}: no CUDA GPU is visible here")
    if threads:
        torch.set_num_threads(threads)
    model, spec = torch_runtime.load_torch_model(path)
    return LoadedModel(torch_runtime.TorchDetector(model, device), spec, "torch", device,
                       model_id(path), note)


def cached_onnx(source: str | Path) -> Path:
    """Where the ONNX export of a torch model file is cached: beside it, named after it
    (``model.pt`` -> ``model.pt.onnx``), so that a user's own ``model.onnx`` is never touched."""
    source = Path(source)
    return source.with_name(source.name + ".onnx")


#: Bumped when the export writes a better graph, so that older cached exports are redone
#: (2: 27 Nov, fixed "same" paddings folded into the convolutions, about 1.3x faster).
CACHE_REVISION = 2


def _source_key(source: Path) -> dict[str, Any]:
    """What the cached export records of its source (and of the exporter): a changed source,
    or an export made before :data:`CACHE_REVISION`, is exported again."""
    stat = source.stat()
    return {"name": source.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "revision": CACHE_REVISION}


def _exported_detector(source: Path, threads: int | None) -> tuple[OnnxDetector, str | None]:
    """ONNX Runtime on the cached export of ``source`` (made now when missing or stale), and
    a note when one was made. A file at the cache path that is not our export of ``source``
    is left alone: the export then goes to a temporary file, as when the folder is read-only."""
    _torch_runtime()  # exporting a .pt needs torch: a clear error when it is absent
    from scratchdet.inference.export import export_checkpoint

    cache, key = cached_onnx(source), _source_key(source)
    ours = False
    if cache.is_file():
        try:
            found = OnnxDetector(cache, threads=threads)
        except ArtifactError:
            found = None
        ours = found is not None and "cache_of" in found.graph
        if found is not None and found.graph.get("cache_of") == key:
            return found, None
    if not cache.exists() or ours:
        try:
            export_checkpoint(source, cache, extra={"cache_of": key})
            return OnnxDetector(cache, threads=threads), (
                f"note: exported {source} to {cache} for ONNX Runtime (once; again when the "
                "model file changes; --runtime torch runs PyTorch)")
        except OSError:
            pass  # a read-only folder: a temporary export below
    with tempfile.TemporaryDirectory(prefix="scratchdet-onnx-") as tmp:
        onnx_path, _ = export_checkpoint(source, Path(tmp) / "model.onnx")
        return OnnxDetector(onnx_path, threads=threads), None  # the session holds the graph


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
                    nested: tuple[str, float, float] | None = None,
                    red_polarity: bool | None = None) -> TiledPredictor:
    """The predictor for ``model``'s spec.

    A tiles model runs over the part region in tiles of its training size (or, with
    ``max_single``, inputs of the region's own size; see ``TiledPredictor``). A resize model,
    or any model given ``max_side``, runs once on the whole photo decoded with its long side
    at ``max_side`` (default: the training size ``spec.resize[0]``). ``nested``: the rule for
    boxes nested in a better box (:func:`scratchdet.geometry.nested.refine_nested`; ``None``:
    the spec's ``nested``; ``("keep", ...)``: boxes as merged).
    ``red_polarity``: show red parts as white ones (``None``: as the spec says).

    Raises:
        ValueError: flips or a scale asked of the whole-photo path.
    """
    spec = model.spec
    red = spec.red_polarity if red_polarity is None else red_polarity
    nested = spec.nested_rule if nested is None else nested
    nested = None if nested[0] == "keep" else nested
    if spec.input_mode == "resize" or max_side is not None:
        if tta or scale != 1.0:
            raise ValueError(f"model {model.model_id}: test-time flips and a decode scale need "
                             "a model trained on tiles (input_mode tiles) without max_side")
        return TiledPredictor(model.detector, tile_size=1 << 20, batch_size=1,
                              score_threshold=score_threshold, whole_photo=True,
                              max_side=max_side or spec.resize[0], nested=nested,
                              red_polarity=red)
    return TiledPredictor(model.detector, tile_size=spec.tile_size,
                          min_overlap=spec.tile_overlap, batch_size=batch_size,
                          score_threshold=score_threshold, scale=scale, max_single=max_single,
                          tta=tta, nested=nested, red_polarity=red)
