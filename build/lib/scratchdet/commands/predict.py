"""``scratchdet predict MODEL SOURCE...``: detections, verdicts and overlays for photos."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scratchdet.commands import options
from scratchdet.structures import DEFAULT_MAX_SINGLE

if TYPE_CHECKING:
    from scratchdet.inference.ray_predict import RayOptions


def predict(
    checkpoint: Path = options.model_argument(),
    sources: list[str] = typer.Argument(
        ..., metavar="SOURCE", help="Photos, folders of photos, globs or .txt lists."),
    out: Path = options.out_option(Path("outputs/predict"), "Output folder."),
    gt: Path | None = typer.Option(
        None, "--gt", help="COCO file whose image ids the results use (matched by file name)."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
    min_score: float = options.min_score_option(0.05, "Lowest box score kept in the results."),
    score_thr: float | None = options.SCORE_THR_ALIAS,
    overlays: Path | None = typer.Option(
        None, "--overlays", help="Folder for one overlay per photo: its part region with the "
        "kept boxes (solid red) and near-misses down to half the threshold (dashed orange)."),
    runtime: str = options.RUNTIME,
    device: str = options.DEVICE,
    batch_size: int = typer.Option(
        2, "--batch-size", min=1, help="Tiles per model call; on a CUDA device photos per "
        "batch (decoded and run together; 4 measured best on an H200)."),
    autotune: bool = typer.Option(
        False, "--autotune", help="With --device cuda: cuDNN tunes its kernels once per "
        "input-shape bucket (about a minute at the start, model calls ~4x faster after: worth "
        "it from about a thousand photos; docs/speed.md)."),
    threads: int = options.THREADS,
    scale: float = typer.Option(1.0, "--scale", help="Decode scale (0.5: JPEG draft decode)."),
    max_single: int = typer.Option(
        DEFAULT_MAX_SINGLE, "--max-single", min=0,
        help="Part region up to this side runs as one input (larger: a few pieces); 0: tiles."),
    tta: str = options.TTA,
    nested: str | None = options.NESTED,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
    ray: bool = typer.Option(
        False, "--ray", rich_help_panel="Ray", help="Run on Ray Data (a local Ray instance, "
        "or --ray-address): same outputs, resumable (rerun the same command after a kill)."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", rich_help_panel="Ray", metavar="ADDRESS",
        help="A running Ray cluster: auto, ray://HEAD:10001 (implies --ray)."),
    ray_workers: int = typer.Option(
        0, "--ray-workers", min=0, rich_help_panel="Ray",
        help="Ray actors, each loading the model once (0: as many as the CPUs/GPUs allow)."),
    ray_cpus: float = typer.Option(
        1.0, "--ray-cpus-per-worker", min=0.01, rich_help_panel="Ray",
        help="CPUs per actor (its intra-op threads unless --threads)."),
    ray_gpus: float = typer.Option(
        0.0, "--ray-gpus-per-worker", min=0.0, rich_help_panel="Ray",
        help="GPUs per actor (with --device cuda, torch runtime)."),
    ray_shard_size: int = typer.Option(
        256, "--ray-shard-size", min=1, rich_help_panel="Ray",
        help="Photos per part file: the unit a rerun resumes from."),
) -> None:
    """Run a trained detector over photos; write COCO results and a pass/fail CSV.

    Exit 0 when every photo was predicted, 1 when some could not be read (the results of
    the others are written), 2 for bad arguments or a model that cannot be loaded.
    """
    from scratchdet.data.photos import collect_photos
    from scratchdet.inference import run

    score_thr = options.alias(min_score, score_thr, "--score-thr", "--min-score")
    use_ray = ray or ray_address is not None
    if use_ray:
        _check_ray(device, ray_gpus)
    try:
        photos = collect_photos(sources)
        ids = run.image_ids(photos, gt)
        model, predictor, threshold, how = open_predictor(
            checkpoint, runtime=runtime, device="cpu" if use_ray and ray_gpus else device,
            threads=threads, threshold=threshold,
            threshold_from=threshold_from, threshold_group=threshold_group, tta=tta,
            batch_size=batch_size, score_thr=score_thr, scale=scale, max_single=max_single,
            nested=nested)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if not quiet:
        options.note(model.note)
    if how and not quiet:
        typer.echo(how)
    if use_ray:
        from scratchdet.inference.ray_predict import RayOptions

        del predictor  # checked here; each Ray actor builds its own
        opts = RayOptions(ray_address, ray_workers, ray_cpus, ray_gpus, ray_shard_size)
        predictor_options = {"runtime": model.runtime, "device": device, "tta": tta,
                             "batch_size": batch_size, "score_thr": score_thr, "scale": scale,
                             "max_single": max_single, "nested": nested, "autotune": autotune}
        _predict_on_ray(checkpoint, model, predictor_options, threads or math.ceil(ray_cpus),
                        photos, ids, threshold, out, overlays, opts, force, quiet)
        return
    predictor = run.batched_on_gpu(model, predictor, batch_size, autotune)  # CPU: itself
    try:
        results = predict_with_progress(run, predictor, photos, ids,
                                        list(model.spec.category_ids), quiet)
    finally:
        getattr(predictor, "close", lambda: None)()
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


def _check_ray(device: str, gpus: float) -> None:
    """Exit 2 when Ray is not installed or GPUs and ``--device`` disagree."""
    from scratchdet.inference.ray_predict import RayUnavailableError, import_ray

    try:
        import_ray()
    except RayUnavailableError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if (gpus > 0) != (device != "cpu"):
        typer.echo("error: --ray-gpus-per-worker goes with --device cuda (and --device cuda "
                   "with --ray-gpus-per-worker, e.g. 1)", err=True)
        raise typer.Exit(2)


def _predict_on_ray(checkpoint: Path, model: Any, predictor_options: dict[str, Any],
                    threads: int, photos: list[Path], ids: dict[str, int], threshold: float,
                    out: Path, overlays: Path | None, opts: RayOptions, force: bool,
                    quiet: bool) -> None:
    """``predict --ray``: the same predictor on each Ray actor, the same outputs."""
    from tqdm import tqdm

    from scratchdet.inference.ray_predict import Job, predict_on_ray
    from scratchdet.inference.shards import PartsError

    if opts.gpus_per_worker and model.runtime != "torch":
        typer.echo(f"error: GPU actors run the torch runtime, not {model.runtime}", err=True)
        raise typer.Exit(2)
    make = functools.partial(worker_predictor, checkpoint.absolute(), threads=threads,
                             **predictor_options)
    job = Job(make, tuple(model.spec.category_ids), threshold,
              {"model": model.model_id, **predictor_options}, overlays)
    bars: list[Any] = []  # opened once the photos left are known

    def start(left: int) -> None:
        bars.append(tqdm(total=left, unit="photo", disable=quiet, leave=False))

    def step(res: Any) -> None:
        if res.error is not None:
            bars[0].write(f"warning: skipped {res.error}")
        bars[0].update(1)

    try:
        files, s = predict_on_ray(job, photos, ids, out, opts, force, step, start)
    except (PartsError, FileExistsError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        for bar in bars:
            bar.close()
    if not quiet:
        per = "n/a" if s["s_per_photo"] is None else f"{s['s_per_photo']:.2f} s/photo"
        again = f", {s['resumed']} done by an earlier run" if s["resumed"] else ""
        n_files = len(files) + (s["predicted"] if overlays else 0)
        typer.echo(f"{s['predicted']}/{s['photos']} photos predicted ({model.runtime} on Ray, "
                   f"{per}{again}); {s['fail_verdicts']} fail at threshold {threshold}; "
                   f"wrote {n_files} files to {out}" + (f" and {overlays}" if overlays else ""))
    if s["failed"]:
        typer.echo(f"warning: {len(s['failed'])} photo(s) could not be read and were skipped",
                   err=True)
        raise typer.Exit(1)


def worker_predictor(checkpoint: Path, **options: Any) -> Any:
    """The predictor of :func:`open_predictor` alone (what each Ray actor builds); on a CUDA
    device the batched one (:func:`scratchdet.inference.run.batched_on_gpu`)."""
    from scratchdet.inference import run

    autotune = bool(options.pop("autotune", False))
    model, predictor, _, _ = open_predictor(checkpoint, **options)
    return run.batched_on_gpu(model, predictor, options.get("batch_size", 2), autotune)


def open_predictor(
    checkpoint: Path, *, runtime: str = "auto", device: str = "cpu", threads: int = 0,
    threshold: float | None = None, threshold_from: Path | None = None,
    threshold_group: str = "all", tta: str = "", batch_size: int = 2, score_thr: float = 0.05,
    scale: float = 1.0, max_single: int = DEFAULT_MAX_SINGLE, nested: str | None = None,
) -> tuple[Any, Any, float, str | None]:
    """The model, its predictor, the verdict threshold and a note saying where the threshold
    came from (``None``: nothing to say), as ``predict`` (and ``watch``) run them. ``nested``:
    a rule for boxes nested in a better box (``None``: the model's).

    Raises:
        ValueError: a bad option, or a model file that cannot be loaded (``ArtifactError``).
        FileNotFoundError: a missing ``threshold_from``.
    """
    from scratchdet.evaluation.verdict_threshold import resolve_threshold
    from scratchdet.geometry.nested import parse_nested
    from scratchdet.inference.load import build_predictor, load_model
    from scratchdet.inference.tta import parse_tta

    flips = parse_tta(tta)
    rule = None if nested is None else parse_nested(nested)
    model = load_model(checkpoint, runtime, device, threads or None)
    threshold, how = resolve_threshold(threshold, threshold_from, threshold_group,
                                       default=model.spec.threshold)
    if how is None and threshold_from is None and model.spec.threshold_source != "default":
        how = f"threshold {threshold:.4g} from the model ({model.spec.threshold_source})"
    predictor = build_predictor(model, batch_size=batch_size, score_threshold=score_thr,
                                scale=scale, max_single=max_single or None, tta=flips,
                                nested=rule)
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
