"""``scratchdet demo``: the whole pipeline on the sample (filled in below)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the demo command lands."""
