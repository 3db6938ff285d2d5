"""``scratchdet token create|list|revoke``: the service's API keys (stored hashed)."""

from __future__ import annotations

import typer

from scratchdet.commands.extras import open_database
from scratchdet.commands.serve import DEFAULT_DB

token_app = typer.Typer(
    help="API keys of the inspection service: viewer (read history), operator (+ inspect), "
    "admin (+ any threshold, delete).",
    no_args_is_help=True,
)
DB = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy URL of the service's history database.")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    name: str = typer.Argument(..., help="Who or what the key is for (unique)."),
    role: str = typer.Option(..., "--role", help="viewer, operator or admin."),
    db: str = DB,
) -> None:
    """Make a key; it is printed once, on the last line, and only its hash is kept."""
    from scratchdet.service.keys import open_key_store

    store = open_database(open_key_store, db)
    try:
        key = store.create(name, role)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()
    typer.echo(f"created {role} key {name!r} in {db}; it is shown only now, keep it safe:")
    typer.echo(key)


@token_app.command("list")
def list_keys(db: str = DB) -> None:
    """The keys: name, role, creation time (never the keys themselves)."""
    from scratchdet.service.keys import open_key_store

    store = open_database(open_key_store, db)
    try:
        keys = store.list()
    finally:
        store.close()
    if not keys:
        typer.echo(f"no keys in {db}; make one with: scratchdet token create NAME --role ROLE")
        return
    width = max(len(k.name) for k in keys)
    for info in keys:
        typer.echo(f"{info.name:<{width}}  {info.role:<8}  created "
                   f"{info.created_at.isoformat(timespec='seconds')}")


@token_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key's name."), db: str = DB) -> None:
    """Delete a key: it (and every page signed in with it) is refused from now on."""
    from scratchdet.service.keys import open_key_store

    store = open_database(open_key_store, db)
    try:
        removed = store.revoke(name)
    finally:
        store.close()
    if not removed:
        typer.echo(f"error: no key named {name!r} in {db} (see scratchdet token list)", err=True)
        raise typer.Exit(2)  # a bad argument, as a missing file
    typer.echo(f"revoked key {name!r}")
