"""ONNX export of a whole detector (dynamic height and width) and an ONNX Runtime detector.

The whole torchvision-convention model (normalise, pad to the stride, optional resize, backbone,
neck, RPN, RoI heads, box decoding and NMS) is traced once into an ONNX graph whose input is one
image ``float[3, H, W]`` (0-1 RGB, any H and W) and whose outputs are ``boxes float[K, 4]``
(xyxy, input pixels), ``scores float[K]`` and ``labels int64[K]``. torchvision's detection code
is written to trace with symbolic sizes (anchors, padding, resize scale), and the parity tests
check that an export traced at one size reproduces PyTorch at other sizes.

What is needed to use the file is stored in the ONNX ``metadata_props`` under ``scratchdet``
as JSON (:class:`OnnxMeta`): the preset, class names, normalisation, stride padding, resize
settings, score/NMS thresholds and the tiling the model was trained for.

:class:`OnnxDetector` has the torch model's call convention (``list[Tensor[3, H, W]]`` ->
``list[{"boxes", "scores", "labels"}]``), so :class:`~scratchdet.inference.predictor.
TiledPredictor` runs it unchanged.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scratchdet.data.io import atomic_output

META_KEY = "scratchdet"
META_FORMAT = "scratchdet-onnx/1"
OUTPUT_NAMES = ("boxes", "scores", "labels")


@dataclass(frozen=True)
class OnnxMeta:
    """What an exported file says about its model (stored as JSON in ``metadata_props``)."""

    preset: str
    class_names: list[str]
    category_ids: list[int]
    image_mean: list[float]
    image_std: list[float]
    size_divisible: int
    resize: bool
    min_size: int
    max_size: int
    score_threshold: float
    nms_threshold: float
    input_mode: str = "tiles"
    tile_size: int = 1024
    tile_overlap: int = 256
    opset: int = 17
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"format": META_FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "<metadata>") -> OnnxMeta:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: '{META_KEY}' metadata is not JSON ({err})") from None
        if not isinstance(data, dict) or data.pop("format", None) != META_FORMAT:
            raise ValueError(f"{source}: '{META_KEY}' metadata is not in format {META_FORMAT}")
        try:
            return cls(**data)
        except TypeError as err:
            raise ValueError(f"{source}: '{META_KEY}' metadata does not fit ({err})") from None


def meta_from_model(
    model: nn.Module,
    preset: str,
    class_names: list[str] | None = None,
    category_ids: list[int] | None = None,
    *,
    input_mode: str = "tiles",
    tile_size: int = 1024,
    tile_overlap: int = 256,
    extra: dict[str, Any] | None = None,
) -> OnnxMeta:
    """:class:`OnnxMeta` read off a built detector (its transform and post-processing)."""
    tf = model.transform
    post = getattr(model, "roi_heads", model)  # RoI heads of R-CNNs; FCOS keeps them itself
    names = list(class_names) if class_names is not None else ["scratch"]
    ids = list(category_ids) if category_ids is not None else list(range(1, len(names) + 1))
    return OnnxMeta(
        preset=preset,
        class_names=names,
        category_ids=ids,
        image_mean=[float(v) for v in tf.image_mean],
        image_std=[float(v) for v in tf.image_std],
        size_divisible=int(tf.size_divisible),
        resize=bool(getattr(tf, "resize_enabled", True)),
        min_size=int(tf.min_size[0]),
        max_size=int(tf.max_size),
        score_threshold=float(post.score_thresh),
        nms_threshold=float(post.nms_thresh),
        input_mode=input_mode,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        extra=dict(extra or {}),
    )


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
    meta: OnnxMeta,
    trace_size: tuple[int, int] = (512, 512),
) -> Path:
    """Trace ``model`` (eval mode) into ``path`` with dynamic height/width; atomic write.

    Args:
        model: a torchvision-convention detector.
        path: the ``.onnx`` file to write (its folder is created).
        meta: stored in the file's ``metadata_props`` under ``scratchdet``.
        trace_size: ``(height, width)`` of the random image the graph is traced with.
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
            _SingleImage(model).eval(), (example,), str(tmp), opset_version=meta.opset,
            dynamo=False, input_names=["image"], output_names=list(OUTPUT_NAMES),
            dynamic_axes={"image": {1: "height", 2: "width"},
                          **{name: {0: "detections"} for name in OUTPUT_NAMES}},
        )
        graph = onnx.load(str(tmp))
        entry = graph.metadata_props.add()
        entry.key, entry.value = META_KEY, meta.to_json()
        onnx.save(graph, str(tmp))
    return out


def export_checkpoint(
    checkpoint: str | Path, path: str | Path, trace_size: tuple[int, int] = (512, 512)
) -> tuple[Path, OnnxMeta]:
    """Export the detector stored in a ``.ckpt``/``model.pt`` (see ``load_detector``)."""
    from scratchdet.training.checkpoint import load_detector

    model, info = load_detector(checkpoint)
    cfg = info.config
    meta = meta_from_model(
        model, cfg.model, info.class_names, info.category_ids,
        input_mode=cfg.input_mode, tile_size=cfg.tile_size, tile_overlap=cfg.tile_overlap,
        extra={"checkpoint": str(checkpoint)},
    )
    return export_onnx(model, path, meta, trace_size), meta


def read_onnx_meta(path: str | Path) -> OnnxMeta:
    """The :class:`OnnxMeta` stored in an exported file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX file not found")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ValueError(f"{path}: not a readable ONNX file ({err})") from None
    props = {p.key: p.value for p in graph.metadata_props}
    if META_KEY not in props:
        raise ValueError(
            f"{path}: no '{META_KEY}' metadata; expected a file written by scratchdet export"
        )
    return OnnxMeta.from_json(props[META_KEY], str(path))


class OnnxDetector:
    """ONNX Runtime detector with the torch model's call convention (CPU).

    Args:
        path: a file written by :func:`export_onnx`.
        threads: intra-op threads (``None``/0: ONNX Runtime's default, one per core).
        optimization: graph optimisation level: ``"all"``, ``"extended"``, ``"basic"`` or
            ``"none"``.
    """

    def __init__(
        self, path: str | Path, threads: int | None = None, optimization: str = "all"
    ) -> None:
        import onnxruntime as ort

        levels = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }
        if optimization not in levels:
            raise ValueError(f"optimization must be one of {sorted(levels)}, got {optimization!r}")
        self.path = Path(path)
        self.meta = read_onnx_meta(self.path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 0)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = levels[optimization]
        # Idle pool threads otherwise spin for a while after each run, taking the CPU that
        # decoding and the torch parts of a pipeline need on a small machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(self.path), opts, providers=["CPUExecutionProvider"]
        )

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        results = []
        for image in images:
            if image.ndim != 3 or image.shape[0] != 3:
                raise ValueError(f"expected images as Tensor[3, H, W], got {tuple(image.shape)}")
            arr = np.ascontiguousarray(image.detach().cpu().float().numpy())
            boxes, scores, labels = self.session.run(list(OUTPUT_NAMES), {"image": arr})
            results.append({
                "boxes": torch.from_numpy(boxes).reshape(-1, 4),
                "scores": torch.from_numpy(scores),
                "labels": torch.from_numpy(labels).to(torch.int64),
            })
        return results
