"""Options several commands share, defined once (same flag, same help everywhere)."""

from __future__ import annotations

import typer

THRESHOLD = typer.Option(
    None, "--threshold", min=0.0, max=1.0, help="Score at which a part fails [default: the "
    "model's operating threshold, 0.5 unless stored at export].")
THRESHOLD_FROM = typer.Option(
    None, "--threshold-from", help="Use the threshold an evaluation picked for its target "
    "recall (its eval/ folder or metrics.json; e.g. crossval's or the demo's).")
THRESHOLD_GROUP = typer.Option(
    "all", "--threshold-group", help="Subgroup whose pick --threshold-from uses.")
