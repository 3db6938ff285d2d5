"""``scratchdet train CONFIG [--set key=value ...] [--resume CKPT]``."""

from __future__ import annotations

from pathlib import Path

import typer

from scratchdet.commands.extras import require_train_extra


def train(
    config: Path = typer.Argument(..., help="Flat YAML training config (see configs/)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set epochs=2 (repeatable)."
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="Checkpoint to continue from (a .ckpt of a run's checkpoints/ "
        "folder; checked before anything is created: exit 2 if missing or unreadable)."),
) -> None:
    """Train a detector; prints the run folder, the best checkpoint and the metrics.

    Exit 2 on a bad config, data or --resume file (the last refused before anything is made).
    """
    require_train_extra("train")
    from scratchdet.config import ConfigError, load_config
    from scratchdet.training.config import TrainConfig

    overrides = list(set_) + ([f"resume={resume}"] if resume else [])
    try:
        cfg = load_config(TrainConfig, config, overrides)
        from scratchdet.training.fit import fit

        result = fit(cfg)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if result.model_path is None:  # not the rank-0 process of a multi-process run
        return
    typer.echo(f"run folder:      {result.run_dir}")
    typer.echo(f"best checkpoint: {result.best_checkpoint or '(none: no val mAP)'}")
    typer.echo(f"last checkpoint: {result.last_checkpoint}")
    typer.echo(f"model:           {result.model_path}")
    typer.echo(f"metrics:         {result.run_dir / 'metrics.json'}")
    for key, value in sorted(result.metrics.items()):
        typer.echo(f"  {key} = {value:.4f}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
