"""What the service needs from a detector: the ``Inspector`` protocol and its adapters.

The web app depends only on :class:`Inspector`. A real scratchdet checkpoint plugs in through
:func:`inspector_from_checkpoint`; :func:`tiny_random_inspector` builds a small torchvision
detector with random weights, used by the tests and the load script to exercise the API
(its boxes mean nothing).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

Verdict = Literal["pass", "fail"]


@dataclass(frozen=True)
class InspectionResult:
    """One photo's result. ``boxes`` are ``[x1, y1, x2, y2]`` in original pixels."""

    boxes: list[list[float]]
    scores: list[float]
    verdict: Verdict
    model_id: str
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Inspector(Protocol):
    """Anything that turns a photo into an :class:`InspectionResult`."""

    model_id: str

    def inspect(self, image: Image.Image | np.ndarray, threshold: float) -> InspectionResult:
        """Detect scratches; keep boxes scoring ``>= threshold``; fail when any is kept."""
        ...


#: What ``create_app`` accepts: a ready inspector, or a callable that builds one (run once,
#: in a background thread at start-up).
InspectorFactory = Callable[[], Inspector]


def verdict_for(scores: list[float]) -> Verdict:
    """A part fails when at least one scratch box was kept."""
    return "fail" if scores else "pass"


def _to_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {array.shape} {array.dtype}")
    return Image.fromarray(array, mode="RGB")


class TorchDetectorInspector:
    """Adapter for a torchvision-format detector (eval output ``{"boxes", "scores", ...}``).

    The photo is shrunk so that its longer side is at most ``max_side`` (``None``: full
    resolution), the detector runs on the copy and the boxes are scaled back to the
    original pixels.
    """

    def __init__(
        self, model: torch.nn.Module, model_id: str, max_side: int | None = None
    ) -> None:
        self.model = model.eval()
        self.model_id = model_id
        self.max_side = max_side

    def inspect(self, image: Image.Image | np.ndarray, threshold: float) -> InspectionResult:
        import torch
        from torchvision.transforms.functional import pil_to_tensor

        started = time.perf_counter()
        photo = _to_pil(image)
        width, height = photo.size
        scale = 1.0
        if self.max_side is not None and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
            small = (max(1, round(width * scale)), max(1, round(height * scale)))
            photo = photo.resize(small, Image.Resampling.BILINEAR, reducing_gap=2.0)
        tensor = pil_to_tensor(photo).float().div_(255.0)
        prepared = time.perf_counter()
        with torch.inference_mode():
            output = self.model([tensor])[0]
        ran = time.perf_counter()
        keep = output["scores"] >= threshold
        boxes = (output["boxes"][keep] / scale).clamp_(min=0.0)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(max=float(width))
        boxes[:, 1::2] = boxes[:, 1::2].clamp(max=float(height))
        scores = [round(float(s), 6) for s in output["scores"][keep]]
        timings = {
            "preprocess_ms": (prepared - started) * 1000.0,
            "model_ms": (ran - prepared) * 1000.0,
            "postprocess_ms": (time.perf_counter() - ran) * 1000.0,
        }
        return InspectionResult(
            boxes=[[round(float(v), 2) for v in box] for box in boxes],
            scores=scores,
            verdict=verdict_for(scores),
            model_id=self.model_id,
            timings=timings,
        )


def tiny_random_inspector(seed: int = 0, max_side: int = 640) -> TorchDetectorInspector:
    """A small Faster R-CNN (MobileNetV3 FPN) with random weights, for API tests only.

    Nothing is downloaded. Its boxes are meaningless but real: they exercise the whole path
    (downscale, detect, map back to original pixels, verdict).
    """
    import torch
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    torch.manual_seed(seed)
    model = fasterrcnn_mobilenet_v3_large_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=2,
        min_size=max_side // 2,
        max_size=max_side,
        box_score_thresh=0.01,
        box_detections_per_img=20,
        rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=100,
    )
    return TorchDetectorInspector(model, f"tiny-random-fasterrcnn-mbv3-seed{seed}", max_side)


def checkpoint_model_id(path: Path) -> str:
    """``<file name>@<first 12 hex digits of its SHA-256>``: names the exact weights served."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.name}@{digest.hexdigest()[:12]}"


class TiledInspector:
    """Adapter for :class:`scratchdet.inference.predictor.TiledPredictor` (native resolution)."""

    def __init__(self, predictor: Any, model_id: str) -> None:
        self.predictor = predictor
        self.model_id = model_id

    def inspect(self, image: Image.Image | np.ndarray, threshold: float) -> InspectionResult:
        prediction = self.predictor.predict(_to_pil(image))
        detections = prediction.detections
        keep = detections["scores"] >= threshold
        boxes = [[round(float(v), 2) for v in box] for box in detections["boxes"][keep]]
        scores = [round(float(v), 6) for v in detections["scores"][keep]]
        timings = {f"{name}_ms": sec * 1000.0 for name, sec in prediction.timings.items()}
        timings.pop("decode_ms", None)  # the photo arrives decoded; the service times that
        return InspectionResult(boxes, scores, verdict_for(scores), self.model_id, timings)


def inspector_from_checkpoint(path: str | Path, max_side: int | None = None,
                              tta: tuple[str, ...] = ()) -> Inspector:
    """Load a scratchdet checkpoint (``.ckpt`` or exported ``model.pt``) as an Inspector.

    A model trained on tiles (``input_mode: tiles``) runs through the tiled native-resolution
    predictor with its training tile size (and the test-time flips ``tta``); one trained on
    resized photos runs on a copy shrunk to its training size (``resize[0]``), unless
    ``max_side`` says otherwise.

    Raises:
        FileNotFoundError: the checkpoint file does not exist.
        ValueError: flips asked for a model that does not run through the tiled predictor.
        RuntimeError: this installation has no checkpoint loader.
        scratchdet.training.checkpoint.CheckpointError: the file is not a scratchdet checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (expected a scratchdet .ckpt/.pt)")
    try:
        from scratchdet.training.checkpoint import load_detector
    except ImportError as error:
        raise RuntimeError(
            f"cannot load {path}: scratchdet.training.checkpoint.load_detector is not "
            f"available in this installation ({error})"
        ) from error
    model, meta = load_detector(path)
    model_id = checkpoint_model_id(path)
    config = meta.config
    if config.input_mode == "tiles" and max_side is None:
        from scratchdet.inference.predictor import DEFAULT_MAX_SINGLE, TiledPredictor

        predictor = TiledPredictor(
            model, tile_size=config.tile_size, min_overlap=config.tile_overlap,
            max_single=DEFAULT_MAX_SINGLE, tta=tta,
        )
        return TiledInspector(predictor, model_id)
    if tta:
        raise ValueError(f"{path}: test-time flips need a model trained on tiles and served "
                         "at full size (input_mode tiles, no --max-side)")
    return TorchDetectorInspector(model, model_id, max_side=max_side or config.resize[0])
