"""Helpers of the commands: the ``train`` extra named instead of an import error, and a
history database that cannot be opened named instead of a traceback."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TypeVar

import typer

T = TypeVar("T")

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


def open_database(opener: Callable[[str], T], url: str) -> T:
    """``opener(url)`` (the history or its key store), or exit 2 naming the database and why
    (a bad URL, a server that is down, a file that cannot be created)."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        return opener(url)
    except (OperationalError, ArgumentError, ValueError, OSError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        typer.echo(f"error: cannot open the history database {url}: {reason}", err=True)
        raise typer.Exit(2) from None
