"""Matplotlib plots of an evaluation (PNG bytes), drawn from ``EvaluationResult.to_dict()``.

Working from the JSON dict lets the report redraw them from an evaluation output folder.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any


def _figure(width: float = 6.0, height: float = 4.2) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def pr_curves_png(result: Mapping[str, Any]) -> bytes:
    """Precision-recall (IoU 0.50, band "all") per subgroup."""
    pr = result["pr_curves"]
    fig, ax = _figure()
    for group, precision in pr["precision"].items():
        if all(p < 0 for p in precision):
            continue  # no GT box in this group
        ax.plot(pr["recall"], [max(p, 0.0) for p in precision], label=group)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"PR curves, IoU {pr['iou']:.2f}, area {pr['band']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return _png(fig)


def _rates(group: Mapping[str, Any]) -> tuple[list[float], list[float], list[float]]:
    thr, rec, frr = [], [], []
    for c in group["curve"]:
        thr.append(c["threshold"])
        rec.append(c["caught"] / c["scratched"] if c["scratched"] else float("nan"))
        frr.append(c["rejected"] / c["clean"] if c["clean"] else float("nan"))
    return thr, rec, frr


def roc_png(part: Mapping[str, Any]) -> bytes:
    """Part-level ROC: share of scratched parts caught vs clean parts rejected."""
    fig, ax = _figure(5.0, 4.6)
    for name, group in part["groups"].items():
        _, rec, frr = _rates(group)
        auc = group["auroc"]
        label = f"{name} (AUROC {auc:.3f})" if auc is not None else f"{name} (AUROC undefined)"
        ax.plot([0.0, *frr, 1.0], [0.0, *rec, 1.0], label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="clean parts rejected", ylabel="scratched parts caught", xlim=(0, 1),
           ylim=(0, 1.02), title="Part level ROC")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _png(fig)


def thresholds_png(part: Mapping[str, Any]) -> bytes:
    """Caught and rejected shares against the score threshold, per subgroup."""
    fig, ax = _figure()
    colours = iter(["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"])
    for name, group in part["groups"].items():
        thr, rec, frr = _rates(group)
        colour = next(colours, None)
        ax.plot(thr, rec, color=colour, label=f"{name}: scratched caught")
        ax.plot(thr, frr, color=colour, linestyle="--", label=f"{name}: clean rejected")
    ax.set(xlabel="score threshold (reject when score >= t)", ylabel="share of parts",
           xlim=(0, 1), ylim=(0, 1.02), title="Part level by threshold")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def prf1_png(curve: Sequence[Mapping[str, Any]], title: str,
             threshold: float | None = None) -> bytes:
    """Precision, recall and F1 against the confidence threshold (``PRF1Point.to_dict()``
    rows); a dotted line at the operating ``threshold``. Undefined values are left out."""
    fig, ax = _figure()
    for key, colour in (("precision", "C0"), ("recall", "C1"), ("f1", "C2")):
        points = [(c["threshold"], c[key]) for c in curve if c[key] is not None]
        if points:
            ax.plot(*zip(*points, strict=True), color=colour, label=key if key != "f1" else "F1")
    if threshold is not None:
        ax.axvline(threshold, color="grey", linestyle=":", linewidth=1.2,
                   label=f"threshold {threshold:.3g}")
    ax.set(xlabel="confidence threshold (kept when score >= t)", ylabel="value", xlim=(0, 1),
           ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)
