"""``scratchdet val MODEL GT IMAGES``: predict, evaluate, analyse and report in one step.

The model is loaded and run as ``predict`` does (:func:`scratchdet.commands.predict.
open_predictor`), into ``OUT/predict``; :func:`scratchdet.report.validation.
validate_predictions` then writes ``OUT/eval``, ``OUT/analysis``, ``OUT/report.html`` and
``OUT/summary.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from scratchdet.commands import options


def _fail(err: Exception | str) -> NoReturn:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2) from None


def threshold_origin(threshold: float, explicit: float | None, how: str | None) -> str:
    """Where the operating threshold came from, in words for the summary line."""
    if explicit is not None:
        return "set by --threshold"
    if how is not None:
        return how.removeprefix(f"threshold {threshold:.4g} ")
    return "the default: the model stores no operating threshold"


def val(
    checkpoint: Path = options.model_argument(),
    gt: Path = typer.Argument(..., metavar="GT", help="Ground-truth COCO json of the photos."),
    images: Path = typer.Argument(..., metavar="IMAGES",
                                  help="Folder of the photos (each listed in GT)."),
    out: Path = options.out_option(Path("outputs/val"), "Output folder."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
    runtime: str = options.RUNTIME,
    device: str = options.DEVICE,
    threads: int = options.THREADS,
    tta: str = options.TTA,
    nested: str | None = options.NESTED,
    min_score: float = options.min_score_option(
        0.0, "Lowest box score kept (0: every box, as training's validation scores them)."),
    score_thr: float | None = options.SCORE_THR_ALIAS,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notes."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
) -> None:
    """Validate a model on labelled photos: predictions, evaluation, analysis, report.html.

    Prints the verdict at the operating threshold first (the model's stored one unless
    --threshold or --threshold-from say otherwise), then AP50 per subgroup and AP. Exit 1
    when some photos could not be read (the others are scored), 2 for bad input.
    """
    from scratchdet.commands.predict import open_predictor, predict_with_progress
    from scratchdet.data.photos import collect_photos
    from scratchdet.inference import run
    from scratchdet.report.validation import check_val_writable, validate_predictions

    score_thr = options.alias(min_score, score_thr, "--score-thr", "--min-score")
    try:
        check_val_writable(out, force)
        photos = collect_photos([str(images)])
        ids = run.image_ids(photos, gt)
        model, predictor, level, how = open_predictor(
            checkpoint, runtime=runtime, device=device, threads=threads, threshold=threshold,
            threshold_from=threshold_from, threshold_group=threshold_group, tta=tta,
            score_thr=score_thr, nested=nested)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        _fail(err)
    if not quiet:
        options.note(model.note)
    origin = threshold_origin(level, threshold, how)
    results = predict_with_progress(run, predictor, photos, ids,
                                    list(model.spec.category_ids), quiet)
    failed = sum(r.error is not None for r in results)
    try:
        run.write_outputs(results, ids, out / "predict", level, force)
        facts = {"model": str(checkpoint), "runtime": f"{model.runtime} ({model.device})",
                 "test-time flips": tta or "none", "photos": f"{len(results) - failed} of "
                 f"{len(results)} predicted from {images}", "threshold": f"{level:.4g} ({origin})"}
        done = validate_predictions(gt, out / "predict", images, out, threshold=level,
                                    how=origin, model=checkpoint, facts=facts, force=force)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        _fail(err)
    for line in done.summary_lines(origin):
        typer.echo(line)
    typer.echo(f"wrote predict/, eval/, analysis/, summary.json and {done.report}")
    if failed:
        typer.echo(f"warning: {failed} photo(s) could not be read and were left out", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("val")(val)
