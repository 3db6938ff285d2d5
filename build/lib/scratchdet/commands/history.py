"""``scratchdet history prune``: drop the oldest inspections (rows and photos together)."""

from __future__ import annotations

from pathlib import Path

import typer

from scratchdet.commands.extras import open_database
from scratchdet.commands.serve import DEFAULT_DB

history_app = typer.Typer(help="The inspection service's history.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")


@history_app.command("prune")
def prune_history(
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy URL of the history."),
    storage: Path = typer.Option(
        Path("scratchdet-service/photos"), "--storage", help="The service's photo folder."),
    keep_days: float | None = typer.Option(
        None, min=0.0, help="Remove inspections older than this many days."),
    max_photos: int | None = typer.Option(
        None, min=0, help="Keep only the newest this many inspections."),
) -> None:
    """Remove inspections past --keep-days or beyond --max-photos, oldest first."""
    from scratchdet.service.db import open_history
    from scratchdet.service.retention import prune

    if keep_days is None and max_photos is None:
        typer.echo("error: give --keep-days, --max-photos or both", err=True)
        raise typer.Exit(2)
    if not storage.is_dir():
        typer.echo(f"error: --storage {storage}: the photo folder does not exist", err=True)
        raise typer.Exit(2)
    history = open_database(open_history, db)
    try:
        pruned = prune(history, storage, keep_days, max_photos)
    finally:
        history.close()
    typer.echo(f"removed {pruned.rows} inspections and {pruned.photos} photos "
               f"({pruned.bytes / 1e6:.1f} MB) from {db} and {storage}")
