"""``scratchdet predict CHECKPOINT SOURCE...``: detections, verdicts and overlays for photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scratchdet.commands import options
from scratchdet.structures import DEFAULT_MAX_SINGLE


def predict(
    checkpoint: Path = typer.Argument(..., help="A scratchdet model: model.onnx, model.pt or "
                                      "a training .ckpt."),
    sources: list[str] = typer.Argument(..., help="Photos, folders of photos or globs."),
    out: Path = typer.Option(Path("outputs/predict"), "--out", help="Output folder."),
    gt: Path | None = typer.Option(
        None, "--gt", help="COCO file whose image ids the results use (matched by file name)."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
    score_thr: float = typer.Option(0.05, "--score-thr", help="Lowest score kept in results."),
    overlays: Path | None = typer.Option(
        None, "--overlays", help="Folder for downscaled photos with the boxes drawn."),
    runtime: str = typer.Option(
        "auto", "--runtime", help="auto (onnx for a .onnx file, else torch), torch or onnx."),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda / cuda:N (torch runtime)."),
    batch_size: int = typer.Option(2, "--batch-size", min=1, help="Tiles per model call."),
    threads: int = typer.Option(0, "--threads", min=0, help="Intra-op threads (0: default)."),
    scale: float = typer.Option(1.0, "--scale", help="Decode scale (0.5: JPEG draft decode)."),
    max_single: int = typer.Option(
        DEFAULT_MAX_SINGLE, "--max-single", min=0,
        help="Part region up to this side runs as one input (larger: a few pieces); 0: tiles."),
    tta: str = typer.Option(
        "", "--tta", help="Test-time flips besides the photo, comma-separated: h, v, hv "
        "(each one more model pass; boxes fused)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
) -> None:
    """Run a trained detector over photos; write COCO results and a pass/fail CSV.

    Exit 0 when every photo was predicted, 1 when some could not be read (the results of
    the others are written), 2 for bad arguments or a model that cannot be loaded.
    """
    from scratchdet.data.photos import collect_photos
    from scratchdet.inference import run

    try:
        photos = collect_photos(sources)
        ids = run.image_ids(photos, gt)
        model, predictor, threshold, how = open_predictor(
            checkpoint, runtime=runtime, device=device, threads=threads, threshold=threshold,
            threshold_from=threshold_from, threshold_group=threshold_group, tta=tta,
            batch_size=batch_size, score_thr=score_thr, scale=scale, max_single=max_single)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if how and not quiet:
        typer.echo(how)
    results = predict_with_progress(run, predictor, photos, ids,
                                    list(model.spec.category_ids), quiet)
    failed = [r for r in results if r.error is not None]
    try:
        files = run.write_outputs(results, ids, out, threshold, force)
        if overlays is not None:
            files += run.write_overlays(results, overlays, threshold, force=force)
    except FileExistsError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if not quiet:
        s = run.summary(results, threshold)
        per = "n/a" if s["s_per_photo"] is None else f"{s['s_per_photo']:.2f} s/photo"
        typer.echo(f"{s['predicted']}/{s['photos']} photos predicted ({model.runtime}, {per}); "
                   f"{s['fail_verdicts']} fail at threshold {threshold}; "
                   f"wrote {len(files)} files to {out}"
                   + (f" and {overlays}" if overlays else ""))
    if failed:  # exit 1: a run where items failed (the others' results are written)
        typer.echo(f"warning: {len(failed)} photo(s) could not be read and were skipped",
                   err=True)
        raise typer.Exit(1)


def open_predictor(
    checkpoint: Path, *, runtime: str = "auto", device: str = "cpu", threads: int = 0,
    threshold: float | None = None, threshold_from: Path | None = None,
    threshold_group: str = "all", tta: str = "", batch_size: int = 2, score_thr: float = 0.05,
    scale: float = 1.0, max_single: int = DEFAULT_MAX_SINGLE,
) -> tuple[Any, Any, float, str | None]:
    """The model, its predictor, the verdict threshold and a note saying where the threshold
    came from (``None``: nothing to say), as ``predict`` (and ``watch``) run them.

    Raises:
        ValueError: a bad option, or a model file that cannot be loaded (``ArtifactError``).
        FileNotFoundError: a missing ``threshold_from``.
    """
    from scratchdet.evaluation.verdict_threshold import resolve_threshold
    from scratchdet.inference.load import build_predictor, load_model
    from scratchdet.inference.tta import parse_tta

    flips = parse_tta(tta)
    model = load_model(checkpoint, runtime, device, threads or None)
    threshold, how = resolve_threshold(threshold, threshold_from, threshold_group,
                                       default=model.spec.threshold)
    if how is None and threshold_from is None and model.spec.threshold_source != "default":
        how = f"threshold {threshold:.4g} from the model ({model.spec.threshold_source})"
    predictor = build_predictor(model, batch_size=batch_size, score_threshold=score_thr,
                                scale=scale, max_single=max_single or None, tta=flips)
    return model, predictor, threshold, how


def predict_with_progress(run: Any, predictor: Any, photos: list[Path], ids: dict[str, int],
                          category_ids: list[int], quiet: bool) -> list[Any]:
    """Predict with a progress bar on stderr; warnings for unreadable photos."""
    from tqdm import tqdm

    bar = tqdm(total=len(photos), unit="photo", disable=quiet, leave=False)

    def step(res: Any) -> None:
        if res.error is not None:
            bar.write(f"warning: skipped {res.error}")
        bar.update(1)

    try:
        return run.predict_photos(predictor, photos, ids, category_ids, step)
    finally:
        bar.close()


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
