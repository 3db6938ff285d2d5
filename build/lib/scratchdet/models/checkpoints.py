"""Loading weights from local files: our state dicts, torchvision backbones, MMDetection 2.x.

:func:`load_pretrained` recognises three layouts:

* a full state dict of the model (optionally under ``"state_dict"``/``"model"``, keys optionally
  prefixed ``"model."`` as Lightning saves them);
* a torchvision ImageNet classification checkpoint of the backbone (``conv1.weight``,
  ``layer1.0...``; ``fc.*`` ignored), loaded into ``model.backbone.body``;
* an MMDetection 2.x Cascade R-CNN checkpoint (``{"state_dict", "meta"}`` with ``backbone.``,
  ``neck.``, ``rpn_head.``, ``roi_head.`` keys), renamed by :func:`mmdet_to_torchvision`.

Every load is strict: missing keys, unexpected keys and shape mismatches raise
:class:`CheckpointMismatchError` naming the file and the keys.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

# (MMDetection pattern, torchvision replacement) applied with re.fullmatch, first match wins.
_MMDET_RULES: tuple[tuple[str, str], ...] = (
    (r"backbone\.(.+)", r"backbone.body.\1"),
    (r"neck\.lateral_convs\.(\d+)\.conv\.(weight|bias)", r"backbone.fpn.inner_blocks.\1.0.\2"),
    (r"neck\.fpn_convs\.(\d+)\.conv\.(weight|bias)", r"backbone.fpn.layer_blocks.\1.0.\2"),
    (r"rpn_head\.rpn_conv\.(weight|bias)", r"rpn.head.conv.0.0.\1"),
    (r"rpn_head\.rpn_cls\.(weight|bias)", r"rpn.head.cls_logits.\1"),
    (r"rpn_head\.rpn_reg\.(weight|bias)", r"rpn.head.bbox_pred.\1"),
    (r"roi_head\.bbox_head\.(\d+)\.shared_fcs\.0\.(weight|bias)", r"roi_heads.box_heads.\1.fc6.\2"),
    (r"roi_head\.bbox_head\.(\d+)\.shared_fcs\.1\.(weight|bias)", r"roi_heads.box_heads.\1.fc7.\2"),
    (r"roi_head\.bbox_head\.(\d+)\.fc_cls\.(weight|bias)",
     r"roi_heads.box_predictors.\1.cls_score.\2"),
    (r"roi_head\.bbox_head\.(\d+)\.fc_reg\.(weight|bias)",
     r"roi_heads.box_predictors.\1.bbox_pred.\2"),
)
_CLS_KEY = re.compile(r"roi_heads\.box_predictors\.\d+\.cls_score\.(weight|bias)")


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the model (missing, unexpected or mis-shaped keys)."""


def _rename(key: str, rules: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, replacement in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def mmdet_to_torchvision(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an MMDetection 2.x Cascade R-CNN state dict to our cascade preset's keys.

    ``fc_cls`` has the background class LAST in MMDetection and FIRST in torchvision, so its
    rows are rotated. ``num_batches_tracked`` buffers are dropped (FrozenBatchNorm2d has none).
    RPN (sigmoid, one logit per anchor) and class-agnostic ``fc_reg`` map one-to-one.

    Raises:
        KeyError: a key that no rule maps (named in the message).
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        new = _rename(key, _MMDET_RULES)
        if new is None:
            raise KeyError(f"no torchvision name for MMDetection tensor {key!r}")
        if _CLS_KEY.fullmatch(new):
            value = torch.cat([value[-1:], value[:-1]])
        out[new] = value
    return out


def torchvision_to_mmdet(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`mmdet_to_torchvision` (without the dropped BN counters)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        new = _inverse_rename(key)
        if _CLS_KEY.fullmatch(key):
            value = torch.cat([value[1:], value[:1]])
        out[new] = value
    return out


def _inverse_rename(key: str) -> str:
    simple = (
        (r"backbone\.body\.(.+)", r"backbone.\1"),
        (r"backbone\.fpn\.inner_blocks\.(\d+)\.0\.(\w+)", r"neck.lateral_convs.\1.conv.\2"),
        (r"backbone\.fpn\.layer_blocks\.(\d+)\.0\.(\w+)", r"neck.fpn_convs.\1.conv.\2"),
        (r"rpn\.head\.conv\.0\.0\.(\w+)", r"rpn_head.rpn_conv.\1"),
        (r"rpn\.head\.cls_logits\.(\w+)", r"rpn_head.rpn_cls.\1"),
        (r"rpn\.head\.bbox_pred\.(\w+)", r"rpn_head.rpn_reg.\1"),
        (r"roi_heads\.box_heads\.(\d+)\.fc6\.(\w+)", r"roi_head.bbox_head.\1.shared_fcs.0.\2"),
        (r"roi_heads\.box_heads\.(\d+)\.fc7\.(\w+)", r"roi_head.bbox_head.\1.shared_fcs.1.\2"),
        (r"roi_heads\.box_predictors\.(\d+)\.cls_score\.(\w+)", r"roi_head.bbox_head.\1.fc_cls.\2"),
        (r"roi_heads\.box_predictors\.(\d+)\.bbox_pred\.(\w+)", r"roi_head.bbox_head.\1.fc_reg.\2"),
    )
    new = _rename(key, simple)
    if new is None:
        raise KeyError(f"no MMDetection name for tensor {key!r}")
    return new


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint file (unwrapping ``state_dict``/``model``), keys unchanged.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file holds no state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # MMDetection's "meta" may hold objects the safe loader refuses; the user named the file.
        raw = torch.load(path, map_location="cpu", weights_only=False)
    for wrapper in ("state_dict", "model"):
        if isinstance(raw, Mapping) and isinstance(raw.get(wrapper), Mapping):
            raw = raw[wrapper]
            break
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (optionally under "
                         "'state_dict' or 'model')")
    return dict(raw)


def _is_mmdet(state: Mapping[str, Tensor]) -> bool:
    return any(k.startswith(("roi_head.", "rpn_head.", "neck.")) for k in state)


def _is_classification_backbone(state: Mapping[str, Tensor]) -> bool:
    return "conv1.weight" in state and any(k.startswith("layer1.") for k in state)


def check_fit(target: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state`` fits ``target`` exactly."""
    expected = target.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = [f"{name} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
                 for name, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", mismatched)) if keys]
        raise CheckpointMismatchError(f"{source}: weights do not fit the model; "
                                      + "; ".join(parts))


def load_pretrained(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a local checkpoint into ``model`` strictly (layout detected; see module doc).

    Returns the model. Raises ``FileNotFoundError`` for a missing file and
    :class:`CheckpointMismatchError` when the tensors do not fit.
    """
    state = read_checkpoint(path)
    target: nn.Module = model
    if _is_mmdet(state):
        state = mmdet_to_torchvision(state)
    elif _is_classification_backbone(state):
        body = getattr(getattr(model, "backbone", None), "body", None)
        if not isinstance(body, nn.Module):
            raise CheckpointMismatchError(f"{path}: a classification backbone checkpoint, but "
                                          "the model has no backbone.body to load it into")
        target = body
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    elif state and all(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    buffers = {k for k, _ in target.named_buffers()}
    state = {k: v for k, v in state.items()
             if not (k.endswith("num_batches_tracked") and k not in buffers)}
    check_fit(target, state, str(path))
    target.load_state_dict(state, strict=True)
    return model
