"""The model artifact: what a trained detector needs to run, as one small versioned spec.

A :class:`ModelSpec` (preset and its overrides, class names and ids, input mode and tiling,
the operating threshold and how it was picked, the rule for boxes nested in a better box,
and the training recipe as free-form provenance that loading never validates) travels inside
every model file:

- ``model.pt``: ``{"format": "scratchdet-model/2", "state_dict", "spec"}`` (torch needed);
- Lightning ``*.ckpt``: the same spec under ``checkpoint["scratchdet"]["spec"]``;
- ``model.onnx``: JSON under the ``scratchdet`` key of the graph's ``metadata_props``,
  ``{"format": "scratchdet-onnx/2", "spec", "graph"}`` (read without torch).

Files written before the spec existed (``scratchdet-model/1``, checkpoints with a stored
``config``, ``scratchdet-onnx/1``) still load: their spec is read off the old fields, with the
training defaults of the time for keys they left out. Renaming a training setting therefore
never breaks a deployed model. Everyone reads and writes model files through this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchdet.geometry.nested import (
    DEFAULT_NESTED,
    LEGACY_NESTED,
    NestedRule,
    format_nested,
    parse_nested,
)
from scratchdet.io import atomic_output
from scratchdet.structures import DEFAULT_THRESHOLD, DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE

if TYPE_CHECKING:
    import torch

SPEC_VERSION = 1
MODEL_FORMAT = "scratchdet-model/2"
ONNX_FORMAT = "scratchdet-onnx/2"
LEGACY_MODEL_FORMAT = "scratchdet-model/1"
LEGACY_ONNX_FORMAT = "scratchdet-onnx/1"
#: The entry of a Lightning checkpoint, and the ONNX metadata key, that hold the spec.
ARTIFACT_KEY = "scratchdet"
INPUT_MODES = ("tiles", "resize")
#: Defaults of the 26 Nov TrainConfig for the keys a legacy file may leave out (frozen: they
#: describe files already written, whatever today's defaults are).
_LEGACY_DEFAULTS: dict[str, Any] = {
    "model": "cascade_rcnn_x101_32x4d_fpn", "input_mode": "resize", "resize": (1333, 800),
    "tile_size": 1024, "tile_overlap": 256, "red_polarity": False,
}
_STATE_PREFIX = "model."  # LightningModule attribute holding the detector
TRAIN_EXTRA = "pip install 'scratchdet[train]'"


class ArtifactError(ValueError):
    """A file that is not a usable scratchdet model; the message names the file and the gap."""


@dataclass(frozen=True)
class ModelSpec:
    """What a deployed model needs to run (all JSON-serialisable).

    Attributes:
        preset: name in ``scratchdet.models.factory.PRESETS``; ``overrides`` its arguments.
        class_names, category_ids: label ``k`` (from 1) is ``class_names[k - 1]``, written to
            COCO as ``category_ids[k - 1]``.
        input_mode: ``tiles`` (trained on native-resolution tiles of ``tile_size``, predicted
            over the part region with at least ``tile_overlap``) or ``resize`` (whole photos
            shrunk to ``resize`` = (long side, short side)).
        threshold, threshold_source: the operating score (a part fails at a box scoring at
            least this) and how it was picked.
        red_polarity: show a red part to the detector as a white one
            (:func:`scratchdet.imaging.white_polarity`), decided per photo by
            :func:`scratchdet.geometry.localize.is_red_part`.
        nested: the rule for boxes nested in a better box of their class, ``MODE[:IOS[:DECAY]]``
            (:mod:`scratchdet.geometry.nested`; stored canonical). A file written before the
            field existed gets :data:`~scratchdet.geometry.nested.LEGACY_NESTED`.
        recipe: the training settings, for provenance only: never validated on load.
    """

    preset: str
    class_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    input_mode: str = "tiles"
    tile_size: int = DEFAULT_TILE_SIZE
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    resize: tuple[int, int] = (1333, 800)
    threshold: float = DEFAULT_THRESHOLD
    threshold_source: str = "default"
    red_polarity: bool = False
    nested: str = DEFAULT_NESTED
    recipe: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(self, "category_ids", tuple(int(i) for i in self.category_ids))
        object.__setattr__(self, "resize", tuple(int(v) for v in self.resize))
        problems = []
        if not self.class_names or len(self.class_names) != len(self.category_ids):
            problems.append("class_names and category_ids must be non-empty and of one length")
        if self.input_mode not in INPUT_MODES:
            problems.append(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        if not 0 <= self.tile_overlap < self.tile_size:
            problems.append("need 0 <= tile_overlap < tile_size")
        if not 0.0 <= self.threshold <= 1.0:
            problems.append(f"threshold must be in [0, 1], got {self.threshold}")
        try:
            object.__setattr__(self, "nested", format_nested(parse_nested(str(self.nested))))
        except ValueError as err:
            problems.append(str(err))
        if problems:
            raise ValueError("model spec: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON types, with its ``version``."""
        data = dataclasses.asdict(self)
        data.update(class_names=list(self.class_names), category_ids=list(self.category_ids),
                    resize=list(self.resize), overrides=dict(self.overrides),
                    recipe=dict(self.recipe))
        return {"version": SPEC_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<spec>") -> ModelSpec:
        """The spec stored in a file; unknown keys and a newer version are refused."""
        data = {"nested": LEGACY_NESTED, **data}  # written before the rule travelled
        version = data.pop("version", None)
        if version != SPEC_VERSION:
            raise ArtifactError(f"{source}: model spec version {version!r}; this scratchdet "
                                f"reads version {SPEC_VERSION} (upgrade scratchdet?)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtifactError(f"{source}: unknown model spec key(s) {unknown}; "
                                f"expected some of {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ArtifactError(f"{source}: {err}") from None

    @property
    def nested_rule(self) -> NestedRule:
        """``nested`` as ``(mode, ios, decay)`` for the predictor."""
        return parse_nested(self.nested)

    def with_threshold(self, threshold: float, source: str) -> ModelSpec:
        """A copy operating at ``threshold``, picked as ``source`` says."""
        return dataclasses.replace(self, threshold=float(threshold), threshold_source=source)


def spec_from_config(config: Mapping[str, Any], class_names: list[str] | tuple[str, ...],
                     category_ids: list[int] | tuple[int, ...]) -> ModelSpec:
    """A spec from a training config dump (today's or a legacy file's; missing keys take the
    26 Nov training defaults, ``nested`` the one-stage models' ``LEGACY_NESTED``). The whole
    config is kept as ``recipe``."""
    get = {**_LEGACY_DEFAULTS, **config}.get
    return ModelSpec(
        preset=str(get("model")), class_names=tuple(class_names),
        category_ids=tuple(category_ids), overrides=dict(get("model_overrides") or {}),
        input_mode=str(get("input_mode")), tile_size=int(get("tile_size")),
        tile_overlap=int(get("tile_overlap")), resize=tuple(get("resize")),
        red_polarity=bool(get("red_polarity")), nested=str(get("nested") or LEGACY_NESTED),
        recipe=json.loads(json.dumps(dict(config), default=str)),
    )


def checkpoint_entry(spec: ModelSpec) -> dict[str, Any]:
    """What training stores under ``checkpoint["scratchdet"]``."""
    return {"spec": spec.to_dict()}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ArtifactError(f"reading or writing a .pt/.ckpt model needs torch ({TRAIN_EXTRA}); "
                            "a station without torch runs the .onnx file of "
                            "`scratchdet export`") from None
    return torch


def _spec_of_entry(entry: Any, path: Path) -> ModelSpec:
    if not isinstance(entry, Mapping):
        raise ArtifactError(f"{path}: '{ARTIFACT_KEY}' entry is not a mapping")
    if "spec" in entry:
        return ModelSpec.from_dict(entry["spec"], str(path))
    try:  # legacy: the whole training config and the class names
        return spec_from_config(entry["config"], entry["class_names"], entry["category_ids"])
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{path}: stored config/class names do not fit ({err!r})") from None


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelSpec, dict[str, Any]]:
    """Weights (keys of the bare detector), spec and ``{epoch, global_step}`` when known,
    from a ``model.pt`` (any format) or a Lightning ``.ckpt``."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    if path.suffix.lower() == ".onnx":
        raise ArtifactError(f"{path}: an ONNX file holds a graph, not weights; "
                            "use it with the onnx runtime")
    torch = _torch()
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ArtifactError(f"{path}: not a readable torch checkpoint ({err})") from None
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise ArtifactError(f"{path}: expected a dict with 'state_dict'")
    if blob.get("format") == MODEL_FORMAT:
        return blob["state_dict"], ModelSpec.from_dict(blob["spec"], str(path)), {}
    if blob.get("format") == LEGACY_MODEL_FORMAT:
        return blob["state_dict"], _spec_of_entry(blob, path), {}
    if ARTIFACT_KEY not in blob:
        raise ArtifactError(f"{path}: no '{ARTIFACT_KEY}' entry (model spec); "
                            "expected a checkpoint written by scratchdet train")
    state = {k[len(_STATE_PREFIX):]: v for k, v in blob["state_dict"].items()
             if k.startswith(_STATE_PREFIX)}
    extra = {k: blob[k] for k in ("epoch", "global_step") if k in blob}
    return state, _spec_of_entry(blob[ARTIFACT_KEY], path), extra


def save_model(path: str | Path, state_dict: Mapping[str, torch.Tensor], spec: ModelSpec) -> Path:
    """Write ``model.pt`` (weights + spec) through a temp file and a rename."""
    torch = _torch()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": MODEL_FORMAT, "state_dict": dict(state_dict), "spec": spec.to_dict()}
    with atomic_output(out) as tmp:
        torch.save(blob, tmp)
    return out


def stamp_threshold(path: str | Path, threshold: float, source: str) -> ModelSpec:
    """Rewrite the ``model.pt`` at ``path`` (atomically) to operate at ``threshold``, picked
    as ``source`` says; the weights are unchanged. Returns the new spec."""
    state, spec, _ = read_checkpoint(path)
    spec = spec.with_threshold(threshold, source)
    save_model(path, state, spec)
    return spec


def onnx_metadata(spec: ModelSpec, graph: Mapping[str, Any]) -> str:
    """The JSON an exported graph carries: the spec and facts about the graph itself."""
    return json.dumps({"format": ONNX_FORMAT, "spec": spec.to_dict(), "graph": dict(graph)},
                      sort_keys=True)


def spec_from_onnx_metadata(props: Mapping[str, str],
                            source: str) -> tuple[ModelSpec, dict[str, Any]]:
    """The spec and graph facts from an ONNX file's ``metadata_props`` (as a dict)."""
    if ARTIFACT_KEY not in props:
        raise ArtifactError(f"{source}: no '{ARTIFACT_KEY}' metadata; expected a file "
                            "written by scratchdet export")
    try:
        data = json.loads(props[ARTIFACT_KEY])
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{source}: '{ARTIFACT_KEY}' metadata is not JSON ({err})") from None
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == ONNX_FORMAT:
        return ModelSpec.from_dict(data["spec"], source), dict(data.get("graph", {}))
    if fmt == LEGACY_ONNX_FORMAT:
        return _legacy_onnx_spec(data, source)
    raise ArtifactError(f"{source}: '{ARTIFACT_KEY}' metadata format {fmt!r}; expected "
                        f"{ONNX_FORMAT} or {LEGACY_ONNX_FORMAT}")


def _legacy_onnx_spec(data: dict[str, Any], source: str) -> tuple[ModelSpec, dict[str, Any]]:
    try:
        spec = ModelSpec(
            preset=data["preset"], class_names=data["class_names"],
            category_ids=data["category_ids"], input_mode=data.get("input_mode", "tiles"),
            tile_size=data.get("tile_size", 1024), tile_overlap=data.get("tile_overlap", 256),
            resize=(data["max_size"], data["min_size"]), recipe=data.get("extra", {}),
            nested=LEGACY_NESTED,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{source}: legacy metadata does not fit ({err!r})") from None
    graph = {k: data[k] for k in ("image_mean", "image_std", "size_divisible", "resize",
                                  "min_size", "max_size", "score_threshold", "nms_threshold",
                                  "opset") if k in data}
    return spec, graph


def read_onnx_spec(path: str | Path) -> tuple[ModelSpec, dict[str, Any]]:
    """The spec and graph facts of an exported file (with ``onnx`` when installed, else
    through an ONNX Runtime session; never torch)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: ONNX file not found")
    try:
        props = _onnx_props(path)
    except ImportError:
        raise
    except Exception as err:
        raise ArtifactError(f"{path}: not a readable ONNX file ({err})") from None
    return spec_from_onnx_metadata(props, str(path))


def _onnx_props(path: Path) -> dict[str, str]:
    try:
        import onnx
    except ImportError:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(session.get_modelmeta().custom_metadata_map)
    graph = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in graph.metadata_props}


def read_spec(path: str | Path) -> ModelSpec:
    """The spec of any model file (``.onnx`` without torch; ``.pt``/``.ckpt`` with it)."""
    if Path(path).suffix.lower() == ".onnx":
        return read_onnx_spec(path)[0]
    return read_checkpoint(path)[1]


#: The longest file name a model id keeps (the history stores ids in 255 characters).
MAX_ID_NAME = 200


def model_id(path: str | Path) -> str:
    """``<file name>@<first 12 hex digits of its SHA-256>``: names the exact weights used
    (a file name over :data:`MAX_ID_NAME` characters is cut, ending in ``...``)."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    name = path.name if len(path.name) <= MAX_ID_NAME else path.name[:MAX_ID_NAME - 3] + "..."
    return f"{name}@{digest.hexdigest()[:12]}"


def model_label(spec: ModelSpec, graph: Mapping[str, Any] | None = None) -> str:
    """The model's name in benchmark lines: its preset, ``+ cascade`` when its overrides add
    the box stages (``lite1_fpn_fast + cascade``), `` int8`` for a quantised export."""
    name = spec.preset
    if spec.overrides.get("cascade") is True and "cascade" not in name:
        name += " + cascade"
    return name + (" int8" if graph and "int8" in graph else "")
