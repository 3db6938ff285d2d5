"""Training curves from a Lightning run folder's CSV log, for the reports.

``scratchdet train`` writes ``<run>/logs/csv/version_N/metrics.csv`` (one ``version_N`` per
session) beside ``<run>/model.pt`` and ``<run>/checkpoints/*.ckpt``. Its columns include
``step``, ``epoch``, ``train/loss`` and, at each validation, ``val/AP`` and ``val/AP50``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from scratchdet.report.html import Block, Image, Text

#: The run's CSV logs, relative to the run folder.
CSV_LOG_GLOB = "logs/csv/version_*/metrics.csv"
#: Validation columns drawn when present (logged by the training module).
VAL_COLUMNS = ("val/AP", "val/AP50")


@dataclass
class TrainingLog:
    """``train/loss`` by step and the validation metrics by epoch, from every session."""

    files: list[Path] = field(default_factory=list)
    loss: list[tuple[float, float]] = field(default_factory=list)
    val: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.loss and not any(self.val.values())


def run_dir_candidates(model_path: str | Path) -> tuple[Path, Path]:
    """Where a model file's run folder may be: its own folder (``<run>/model.pt``) or the one
    above (``<run>/checkpoints/x.ckpt``)."""
    path = Path(model_path).resolve()
    return path.parent, path.parent.parent


def find_run_dir(model_path: str | Path) -> Path | None:
    """The first of :func:`run_dir_candidates` that holds a CSV log; None when neither does."""
    return next((d for d in run_dir_candidates(model_path) if any(d.glob(CSV_LOG_GLOB))), None)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def read_training_log(run_dir: str | Path) -> TrainingLog:
    """Every ``metrics.csv`` of the run, in version order; rows without a value are skipped."""
    log = TrainingLog()
    for path in sorted(Path(run_dir).glob(CSV_LOG_GLOB)):
        log.files.append(path)
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                step, loss = _number(row.get("step")), _number(row.get("train/loss"))
                if step is not None and loss is not None:
                    log.loss.append((step, loss))
                epoch = _number(row.get("epoch"))
                for col in VAL_COLUMNS:
                    value = _number(row.get(col))
                    if value is not None and epoch is not None:
                        log.val.setdefault(col, []).append((epoch, value))
    log.loss.sort()
    return log


def training_curves_png(log: TrainingLog) -> bytes | None:
    """The training loss by step and (when logged) val AP/AP50 by epoch; None when empty."""
    if log.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if any(log.val.values()) else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.5), dpi=100, squeeze=False)
    ax = axes[0][0]
    if log.loss:
        ax.plot(*zip(*log.loss, strict=True), lw=1)
    ax.set(xlabel="step", ylabel="train loss", title="training loss")
    ax.grid(alpha=0.3)
    if panels == 2:
        ax = axes[0][1]
        for col, points in log.val.items():
            ax.plot(*zip(*sorted(points), strict=True), marker="o", label=col)
        ax.set(xlabel="epoch", ylabel="value", ylim=(0, 1.02), title="validation")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def training_blocks(model_path: str | Path | None) -> list[Block]:
    """The curves of the model file's run folder, or a note saying where none was found."""
    run_dir = find_run_dir(model_path) if model_path is not None else None
    log = read_training_log(run_dir) if run_dir is not None else TrainingLog()
    png = training_curves_png(log)
    if png is None:
        where = (" or ".join(str(d) for d in run_dir_candidates(model_path))
                 if model_path is not None else "no model folder given")
        return [Text(f"No training curves: no {CSV_LOG_GLOB} with values in {where} (the "
                     "Lightning run folder of scratchdet train holds one beside model.pt).")]
    files = ", ".join(str(p) for p in log.files)
    return [Text(f"From {files}."), Image(png, caption="training loss (sum of the detector's "
                                          "losses); validation AP and AP50 when logged")]
