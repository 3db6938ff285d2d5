"""Commands that need the ``train`` extra (torch) say so instead of failing on an import."""

from __future__ import annotations

import importlib.util

import typer

TRAIN_PACKAGES = ("torch", "torchvision", "lightning", "timm")
TRAIN_EXTRA = "pip install 'scratchdet[train]'"


def missing_train_packages() -> list[str]:
    """The packages of the ``train`` extra that this installation lacks."""
    return [name for name in TRAIN_PACKAGES if importlib.util.find_spec(name) is None]


def require_train_extra(command: str) -> None:
    """Exit 2 with the install command when ``command`` cannot run here."""
    missing = missing_train_packages()
    if missing:
        typer.echo(f"error: `scratchdet {command}` needs {', '.join(missing)} (not installed in "
                   f"this station install): {TRAIN_EXTRA}", err=True)
        raise typer.Exit(2)
