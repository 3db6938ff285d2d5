"""``scratchdet crossval CONFIG``: k-fold cross-validation over the sample's train + val."""

from __future__ import annotations

from pathlib import Path

import typer

from scratchdet.commands import options
from scratchdet.commands.extras import require_train_extra
from scratchdet.structures import DEFAULT_MAX_SINGLE


def crossval(
    config: Path = typer.Argument(Path("configs/cpu_fast.yaml"),
                                  help="Training config (flat YAML) used for every fold."),
    sample: Path | None = typer.Option(
        None, "--sample", help="The scratch sample folder (default: $SCRATCHDET_SAMPLE)."),
    out: Path = options.out_option(Path("outputs/crossval"), "Output folder."),
    folds: int = typer.Option(3, "--folds", help="Number of folds (>= 2)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fold assignment."),
    fold: list[int] = typer.Option(
        [], "--fold", help="Run only this fold (repeatable); the table then covers those."),
    set_: list[str] = typer.Option([], "--set", help="Training config override key=value."),
    max_single: int = typer.Option(
        DEFAULT_MAX_SINGLE, "--max-single", min=0,
        help="Predict the part region as inputs of up to this "
        "side (the default fast path, as the benchmark); 0: the model's training tiles."),
    tta: str = typer.Option(
        "", "--tta", help="Test-time flips of the held-out photos (h, v, hv; comma-separated)."),
    scale: float = typer.Option(
        1.0, "--scale", help="Decode scale of the held-out photos (0 < scale <= 4)."),
    nested: str | None = typer.Option(
        None, "--nested", metavar="RULE", show_default=False, help="Boxes nested in a better "
        "box after the merge: MODE(:IOS(:DECAY)), MODE keep, suppress, decay, union or wbf "
        "(geometry.nested; default: the config's nested, keep in cpu_fast)."),
    red_polarity: bool | None = typer.Option(
        None, "--red-polarity/--no-red-polarity", help="Show red parts to the models as white "
        "ones (imaging.white_polarity) or not; default: as each fold model's spec says."),
    reuse: Path | None = typer.Option(
        None, "--reuse", help="An earlier crossval --out folder: predict with its fold models, "
        "no training (compare prediction settings on the same models)."),
    int8: bool = typer.Option(
        False, "--int8", help="With --reuse: predict with each fold model's int8 export "
        "(as export --int8), calibrated on the fold's training photos."),
    mine_from: Path | None = typer.Option(
        None, "--mine-from", help="An earlier crossval --out folder (same folds): each fold "
        "trains with the false boxes its model finds on the fold's training photos as hard "
        "negatives (needs tile_options.hard_background > 0)."),
    bootstrap: int = typer.Option(
        200, "--bootstrap", min=0, help="Photo resamples for 95% intervals of the pooled "
        "AP50 per colour (0: none)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run in --out: finished folds are "
        "kept, a fold cut short goes on from its last checkpoint, with the run's own copy of "
        "the config; the other settings must be the run's (checked). A missing or empty "
        "--out: the run starts there."),
    jobs: int = typer.Option(
        1, "--jobs", min=1, help="Folds run at once, one process each (for a GPU machine or "
        "many cores; training on 2 cores is fastest with 1)."),
) -> None:
    """Train one model per fold, predict its held-out photos, evaluate them all together."""
    require_train_extra("crossval")
    from scratchdet.config import ConfigError
    from scratchdet.geometry.nested import parse_nested
    from scratchdet.inference.tta import parse_tta
    from scratchdet.settings import sample_dir
    from scratchdet.training.crossval import CrossValSettings, run_crossval

    if any(not 0 <= f < folds for f in fold):
        typer.echo(f"error: --fold must be in 0..{folds - 1}", err=True)
        raise typer.Exit(2)
    try:
        flips = parse_tta(tta)
        nested_rule = None if nested is None else parse_nested(nested)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    settings = CrossValSettings(config, sample or sample_dir(), out, folds, seed,
                                overrides=tuple(set_), only_folds=tuple(fold) or None,
                                max_single=max_single or None, reuse=reuse,
                                jobs=jobs, bootstrap=bootstrap, tta=flips,
                                scale=scale, mine_from=mine_from,
                                nested=nested_rule,
                                red_polarity=red_polarity, resume=resume, int8=int8)
    try:
        res = run_crossval(settings, typer.echo)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(res.text)
    for key, value in res.headline.to_dict().items():
        typer.echo(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    typer.echo(f"outputs: {out}")


def register(app: typer.Typer) -> None:
    app.command("crossval")(crossval)
