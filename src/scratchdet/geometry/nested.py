"""Boxes nested in a better box: fragments and partial boxes of one scratch.

Class-wise NMS at IoU 0.5 keeps a short fragment lying inside a long box (their IoU is small),
so a long or crossing scratch can come out as a stack of boxes. :func:`refine_nested` treats a
box as *nested* when at least ``ios`` of its area lies inside a higher-scoring box of its class
(intersection over the smaller box), and then, by ``mode``:

- ``keep``: nothing changes;
- ``suppress``: the nested box is dropped;
- ``decay``: its score is multiplied by ``decay`` (it still counts for recall at low
  thresholds, but no longer stacks on the operator's screen);
- ``union``: each group of mutually nested boxes becomes their union box, with the group's
  highest score;
- ``wbf``: each group becomes the score-weighted mean of its boxes, with the highest score.

A rule is written ``MODE[:IOS[:DECAY]]`` (:func:`parse_nested`, :func:`format_nested`).
Models carry theirs (``ModelSpec.nested``, from the training config's ``nested``);
:data:`DEFAULT_NESTED` is ``keep`` since the cascade box stages became the default model
(27 Nov: they give at most one box per scratch at 0.5 by themselves, and on two seeds of
out-of-fold cross-validation ``decay:0.5:0.5`` cost them 0.007-0.013 AP50, docs/quality.md).
:data:`LEGACY_NESTED` ``decay:0.5:0.5``, measured for the one-stage box head (AP50 within 0.004,
about half the unmatched boxes), is the rule of model files written before the rule travelled.
Pure numpy; boxes are xyxy; the output is sorted by falling score (stable).
"""

from __future__ import annotations

import numpy as np

MODES = ("keep", "suppress", "decay", "union", "wbf")
#: The training config's rule unless it states one (boxes as merged).
DEFAULT_NESTED = "keep"
#: The rule of a model file or config dump without one (all one-stage models, 26-27 Nov).
LEGACY_NESTED = "decay:0.5:0.5"
#: ``(mode, ios, decay)``, as :func:`parse_nested` returns it.
NestedRule = tuple[str, float, float]
#: The rule that changes nothing (boxes as merged).
KEEP: NestedRule = ("keep", 0.5, 0.5)


def intersection_over_smaller(boxes: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """``float[N, M]``: intersection of xyxy boxes i (of ``boxes``) and j (of ``others``,
    default ``boxes``: ``[N, N]``) over the smaller of the two areas."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    b = a if others is None else np.asarray(others, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


def _groups(nested: np.ndarray) -> np.ndarray:
    """Connected components of the symmetric boolean matrix ``nested``."""
    n = len(nested)
    group = np.arange(n)
    for i in range(n):
        for j in np.flatnonzero(nested[i]):
            gi, gj = group[i], group[j]
            if gi != gj:
                group[group == gj] = gi
    return group


def refine_nested(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                  mode: str = "keep", ios: float = 0.5,
                  decay: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes, scores, labels)`` after the ``mode`` rule of the module docstring."""
    if mode not in MODES:
        raise ValueError(f"nested mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0 < ios <= 1 or not 0 <= decay <= 1:
        raise ValueError(f"need 0 < ios <= 1 and 0 <= decay <= 1, got {ios}, {decay}")
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    order = np.argsort(-s, kind="stable")
    b, s, lab = b[order], s[order], lab[order]
    if mode == "keep" or len(b) < 2:
        return b, s, lab
    same = lab[:, None] == lab[None, :]
    over = (intersection_over_smaller(b) >= ios) & same
    np.fill_diagonal(over, False)
    inside_better = np.tril(over, k=-1).any(1)  # nested in a box earlier in score order
    if mode == "suppress":
        keep = ~inside_better
        return b[keep], s[keep], lab[keep]
    if mode == "decay":
        s = np.where(inside_better, s * decay, s)
        again = np.argsort(-s, kind="stable")
        return b[again], s[again], lab[again]
    group = _groups(over)
    out_b, out_s, out_l = [], [], []
    for g in dict.fromkeys(group.tolist()):  # groups in order of their best box
        m = group == g
        if mode == "union":
            out_b.append(np.concatenate([b[m, :2].min(0), b[m, 2:].max(0)]))
        else:
            out_b.append((b[m] * s[m, None]).sum(0) / max(s[m].sum(), 1e-9))
        out_s.append(s[m].max())
        out_l.append(lab[m][0])
    return (np.asarray(out_b).reshape(-1, 4), np.asarray(out_s),
            np.asarray(out_l, dtype=np.int64))


def parse_nested(text: str) -> NestedRule:
    """``"MODE[:IOS[:DECAY]]"`` -> ``(mode, ios, decay)``; e.g. ``"decay:0.5:0.3"``.

    Raises:
        ValueError: an unknown mode or a value out of range (the message shows the grammar).
    """
    parts = text.strip().lower().split(":")
    try:
        values = [float(v) for v in parts[1:3]]
    except ValueError:
        values = [-1.0]
    mode, ios, decay = parts[0], *(values + [0.5, 0.5][len(values):])
    if mode not in MODES or len(parts) > 3 or not 0 < ios <= 1 or not 0 <= decay <= 1:
        raise ValueError(f"nested: expected MODE[:IOS[:DECAY]] with MODE one of "
                         f"{', '.join(MODES)}, 0 < IOS <= 1, 0 <= DECAY <= 1; got {text!r}")
    return mode, ios, decay


def format_nested(rule: NestedRule) -> str:
    """The canonical text of ``rule``: ``keep``, ``MODE:IOS`` or ``decay:IOS:DECAY``, leaving
    out what the mode does not use (``parse_nested`` of it gives a rule that acts the same)."""
    mode, ios, decay = rule
    if mode == "keep":
        return "keep"
    text = f"{mode}:{float(ios)!r}"
    return f"{text}:{float(decay)!r}" if mode == "decay" else text
