"""``scratchdet data ...`` commands."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Dataset tools: fetch, validate, convert, stats, split.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
