"""``scratchdet demo``: stats, training, val evaluation, benchmark and report on the sample."""

from __future__ import annotations

from pathlib import Path

import typer

from scratchdet.commands import options
from scratchdet.commands.extras import require_train_extra


def demo(
    sample: Path | None = typer.Option(
        None, "--sample", help="The scratch sample folder (default: $SCRATCHDET_SAMPLE)."),
    out: Path = options.out_option(Path("outputs/demo"), "Output folder."),
    schedule: str = typer.Option(
        "short", "--schedule",
        help="short (16 epochs: whole demo < 20 min on 2 cores) or full (the config's own)."),
    final: bool = typer.Option(
        False, "--final", help="Train on train + val (no held-out evaluation then)."),
    config: Path = typer.Option(
        Path("configs/cpu_fast.yaml"), "--config", help="Training config (flat YAML)."),
    set_: list[str] = typer.Option([], "--set", help="Training config override key=value."),
    benchmark: bool = typer.Option(True, "--benchmark/--no-benchmark", help="Time CPU speed."),
    model: Path | None = typer.Option(
        None, "--model", help="Skip training: evaluate and report this model.pt / .ckpt."),
    tta: str = typer.Option(
        "", "--tta", help="Test-time flips for the val prediction and the benchmark: h, v, hv "
        "(comma-separated; about 2.4x the model time for h,v)."),
    threshold_from: Path | None = typer.Option(
        None, "--threshold-from", help="The trained model carries the threshold this "
        "evaluation picked (a crossval's eval/; for --final; default: the val pick)."),
    threshold_group: str = options.THRESHOLD_GROUP,
) -> None:
    """Run the whole pipeline on the sample and write an HTML report."""
    require_train_extra("demo")
    from scratchdet.config import ConfigError
    from scratchdet.demo.pipeline import DemoSettings
    from scratchdet.demo.runner import run_demo
    from scratchdet.inference.tta import parse_tta
    from scratchdet.settings import sample_dir

    try:
        flips = parse_tta(tta)
    except ValueError as err:
        typer.echo(f"error: --tta: {err}", err=True)
        raise typer.Exit(2) from None
    settings = DemoSettings(sample or sample_dir(), out, config, schedule, final, tuple(set_),
                            benchmark, model=model, tta=flips, threshold_from=threshold_from,
                            threshold_group=threshold_group)
    try:
        res = run_demo(settings, typer.echo)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo("")
    for key, path in res.files.items():
        typer.echo(f"{key + ':':<11}{path}")
    for key, value in res.headline.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        typer.echo(f"{key}: {shown}")
    for note in res.notes:
        typer.echo(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
