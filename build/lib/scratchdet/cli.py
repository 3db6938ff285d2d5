"""The ``scratchdet`` command line. Commands live in ``scratchdet.commands.*`` and stay thin.

Each command module exposes ``register(app)``; heavy imports (torch, ...) happen inside
the command functions so that ``--help`` stays fast.
"""

from __future__ import annotations

import typer

from scratchdet import __version__
from scratchdet.commands import benchmark as benchmark_commands
from scratchdet.commands import crossval as crossval_commands
from scratchdet.commands import data as data_commands
from scratchdet.commands import demo as demo_commands
from scratchdet.commands import evaluate as evaluate_commands
from scratchdet.commands import history as history_commands
from scratchdet.commands import predict as predict_commands
from scratchdet.commands import serve as serve_commands
from scratchdet.commands import token as token_commands
from scratchdet.commands import train as train_commands
from scratchdet.commands import val as val_commands
from scratchdet.commands import watch as watch_commands

app = typer.Typer(
    name="scratchdet",
    help="Scratch detection for painted parts: data tools, training, evaluation, prediction.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scratchdet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """scratchdet command line."""


# One line per command module; each adds its commands or sub-apps.
benchmark_commands.register(app)
crossval_commands.register(app)
data_commands.register(app)
demo_commands.register(app)
evaluate_commands.register(app)
history_commands.register(app)
predict_commands.register(app)
serve_commands.register(app)
token_commands.register(app)
train_commands.register(app)
val_commands.register(app)
watch_commands.register(app)
