"""What the service needs from a detector: the ``Inspector`` protocol and its one adapter.

The web app depends only on :class:`Inspector`. Every model runs through the one predictor
(:mod:`scratchdet.inference.load`): :func:`inspector_from_model` opens a model file (``.onnx``
without torch, ``model.pt``/``.ckpt`` with it); :func:`tiny_random_inspector` wraps a small
torchvision detector with random weights, used by the tests and the load script to exercise
the API (its boxes mean nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from scratchdet.artifact import ModelSpec, model_id
from scratchdet.geometry.nested import NestedRule
from scratchdet.inference.load import build_predictor, from_module, load_model
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.structures import Detections, Verdict, verdict

#: The most boxes under the threshold an inspection keeps (the highest-scoring ones).
MAX_BELOW = 50


@dataclass(frozen=True)
class InspectionResult:
    """One photo's result. ``boxes`` are ``[x1, y1, x2, y2]`` in original pixels.

    ``below_boxes``/``below_scores``: boxes the detector reported under the threshold (down
    to the predictor's own floor; at most :data:`MAX_BELOW`), for near-misses and
    re-thresholding on the page. ``part_box``: the part region, when the inspector knows it.
    """

    boxes: list[list[float]]
    scores: list[float]
    verdict: Verdict
    model_id: str
    timings: dict[str, float] = field(default_factory=dict)
    below_boxes: list[list[float]] = field(default_factory=list)
    below_scores: list[float] = field(default_factory=list)
    part_box: list[float] | None = None


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


def _to_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {array.shape} {array.dtype}")
    return Image.fromarray(array, mode="RGB")


class PredictorInspector:
    """An :class:`Inspector` over the predictor (native-resolution tiles, or the whole photo
    shrunk for a model trained so). Boxes are clipped to the photo. ``spec``: what the
    model file says about the model (its operating threshold, ...), when known; ``note``: how
    it was loaded, when worth saying (e.g. its ONNX export was made now)."""

    def __init__(self, predictor: TiledPredictor, model_id: str,
                 spec: ModelSpec | None = None, note: str | None = None) -> None:
        self.predictor = predictor
        self.model_id = model_id
        self.spec = spec
        self.note = note

    def inspect(self, image: Image.Image | np.ndarray, threshold: float) -> InspectionResult:
        photo = _to_pil(image)
        prediction = self.predictor.predict(photo)
        found = prediction.detections
        boxes, scores = _boxes_and_scores(found.select(found.scores >= threshold), photo.size)
        near = found.select(found.scores < threshold)
        near = near.select(np.argsort(-near.scores, kind="stable")[:MAX_BELOW])
        below_boxes, below_scores = _boxes_and_scores(near, photo.size)
        timings = {f"{name}_ms": sec * 1000.0 for name, sec in prediction.timings.items()}
        timings.pop("decode_ms", None)  # the photo arrives decoded; the service times that
        return InspectionResult(
            boxes=boxes, scores=scores,
            verdict=verdict(found.max_score(), threshold),
            model_id=self.model_id, timings=timings, below_boxes=below_boxes,
            below_scores=below_scores, part_box=[float(v) for v in prediction.region.box],
        )


def _boxes_and_scores(found: Detections, size: tuple[int, int],
                      ) -> tuple[list[list[float]], list[float]]:
    """Boxes clipped to the photo (rounded to 0.01 px) and scores (to 1e-6), as lists."""
    width, height = size
    boxes = np.clip(found.boxes, 0.0, [width, height, width, height])
    return ([[round(float(v), 2) for v in box] for box in boxes],
            [round(float(v), 6) for v in found.scores])


def inspector_from_model(path: str | Path, max_side: int | None = None,
                         tta: tuple[str, ...] = (), runtime: str = "auto",
                         threads: int | None = None,
                         nested: NestedRule | None = None) -> PredictorInspector:
    """The model file at ``path`` (``.onnx``, ``model.pt`` or ``.ckpt``) as an Inspector.

    A model trained on tiles runs over the part region at native resolution (with the
    test-time flips ``tta``); one trained on shrunk photos, or any model given ``max_side``,
    runs once on the photo shrunk to that long side. ``nested``: the rule for boxes nested in
    a better box (``None``: the model's).

    Raises:
        scratchdet.artifact.ArtifactError: missing file, not a scratchdet model, or torch
            needed and absent (the message names the extra).
        ValueError: flips asked for the whole-photo path; an unknown runtime.
    """
    loaded = load_model(path, runtime, threads=threads)
    return PredictorInspector(build_predictor(loaded, tta=tta, max_side=max_side, nested=nested),
                              model_id(path), loaded.spec, loaded.note)


def tiny_random_inspector(seed: int = 0, max_side: int = 640) -> PredictorInspector:
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
    name = f"tiny-random-fasterrcnn-mbv3-seed{seed}"
    spec = ModelSpec(preset=name, class_names=("scratch",), category_ids=(1,),
                     input_mode="resize", resize=(max_side, max_side // 2))
    predictor = build_predictor(from_module(model, spec), score_threshold=0.0)
    return PredictorInspector(predictor, name, spec)
