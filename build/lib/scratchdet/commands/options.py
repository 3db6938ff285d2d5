"""The CLI's grammar, defined once: the same flag, default and help in every command.

- the model is the first positional argument (``MODEL``) of every command that runs one;
- ``--out``/``-o`` is the output file or folder;
- ``--threshold`` is the verdict threshold (a part fails at or above it); ``--min-score`` is
  the lowest box score kept (its old name ``--score-thr`` still works, hidden, with a note);
- ``--runtime auto`` and ``--threads 0`` mean the same everywhere;
- exit 2: a usage error (a bad or missing argument, option or input file); exit 1: the work
  itself failed (e.g. photos that could not be read).

Help texts use parentheses, not square brackets (which the help renderer takes for markup).
"""

from __future__ import annotations

from typing import Any

import typer

MODEL_HELP = "A scratchdet model: model.onnx, model.pt or a training .ckpt."


def model_argument(help: str = MODEL_HELP) -> Any:
    """The ``MODEL`` positional argument (required)."""
    return typer.Argument(..., metavar="MODEL", show_default=False, help=help)


def out_option(default: Any, help: str) -> Any:
    """``--out``/``-o``: where a command writes."""
    return typer.Option(default, "--out", "-o", help=help)


def min_score_option(default: float, help: str) -> Any:
    """``--min-score``: the lowest box score kept."""
    return typer.Option(default, "--min-score", min=0.0, max=1.0, help=help)


THRESHOLD = typer.Option(
    None, "--threshold", min=0.0, max=1.0, show_default=False,
    help="Verdict threshold: a part fails when a box scores at or above it (default: the "
    "model's operating threshold, 0.5 unless one was stored at export).")
THRESHOLD_FROM = typer.Option(
    None, "--threshold-from", help="Use the threshold an evaluation picked for its target "
    "recall (its eval/ folder or metrics.json; e.g. crossval's or the demo's).")
THRESHOLD_GROUP = typer.Option(
    "all", "--threshold-group", help="Subgroup whose pick --threshold-from uses.")
RUNTIME = typer.Option(
    "auto", "--runtime", help="auto: ONNX Runtime on the CPU (a model.pt/.ckpt is exported "
    "once to MODEL.onnx beside it, again when it changes; PyTorch if that fails), PyTorch on "
    "a GPU; or torch, onnx, openvino (an exported .onnx).")
THREADS = typer.Option(
    0, "--threads", min=0, help="Intra-op threads of PyTorch and ONNX Runtime (0: their "
    "default, one per core).")
TTA = typer.Option("", "--tta", help="Test-time flips besides the photo, comma-separated: h, "
                   "v, hv (each one more model pass; boxes fused).")
NESTED = typer.Option(
    None, "--nested", metavar="RULE", show_default=False, help="Boxes nested in a better box "
    "of their class: MODE(:IOS(:DECAY)), MODE keep, suppress, decay, union or wbf "
    "(geometry.nested; default: the model's own rule, from its training config; "
    "keep: boxes as merged, cpu_fast's rule).")
DEVICE = typer.Option("cpu", "--device", help="cpu, or cuda / cuda:N (torch runtime).")
SCORE_THR_ALIAS = typer.Option(
    None, "--score-thr", hidden=True, min=0.0, max=1.0,
    help="Deprecated name of --min-score.")


SCORE_THR_ALIAS_THRESHOLD = typer.Option(
    None, "--score-thr", hidden=True, min=0.0, max=1.0,
    help="Deprecated name of --threshold.")


def deprecated(old: str, new: str) -> None:
    """One line on stderr: ``old`` still works, ``new`` is its name now."""
    typer.echo(f"note: {old} is deprecated; use {new}", err=True)


def alias(value: Any, old_value: Any, old: str, new: str) -> Any:
    """The value of an option given by its deprecated name ``old`` (with a note), else
    ``value``."""
    if old_value is None:
        return value
    deprecated(old, new)
    return old_value


def note(message: str | None) -> None:
    """A note about how the model was loaded (e.g. its ONNX export), on stderr."""
    if message:
        typer.echo(message, err=True)
