"""``scratchdet serve MODEL``: the inspection web service (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path

import typer

from scratchdet.commands import options


def serve(
    checkpoint: Path | None = typer.Argument(
        None, help="Model to serve: model.onnx (no torch needed), model.pt or a training "
        ".ckpt; loaded once, before the server starts."
    ),
    tiny_random: bool = typer.Option(
        False, "--tiny-random",
        help="Serve a tiny detector with RANDOM weights instead (smoke and load tests only).",
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    db: str = typer.Option(
        "sqlite:///scratchdet-service/history.db", "--db", help="SQLAlchemy URL of the history."
    ),
    storage: Path = typer.Option(
        Path("scratchdet-service/photos"), "--storage", help="Folder for uploaded photos."
    ),
    max_upload_mb: float = typer.Option(40.0, help="Largest photo file, MiB."),
    max_megapixels: float = typer.Option(40.0, help="Largest photo, megapixels."),
    max_concurrency: int = typer.Option(2, help="Inspections running at once."),
    queue_timeout: float = typer.Option(30.0, help="Seconds to wait for a slot, then 503."),
    request_timeout: float = typer.Option(120.0, help="Seconds one inspection may take, then 504."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
    max_side: int | None = typer.Option(
        None, help="Run the checkpoint on a copy shrunk to this longer side (default: full size)."
    ),
    tta: str = typer.Option(
        "", "--tta", help="Test-time flips (h, v, hv; comma-separated): ~2.4x slower per photo."),
) -> None:
    """Serve POST /v1/inspect, the history, overlays, /healthz, /readyz and the web page at /."""
    import uvicorn

    from scratchdet.evaluation.verdict_threshold import resolve_threshold
    from scratchdet.inference.tta import parse_tta
    from scratchdet.service.app import create_app
    from scratchdet.service.config import ServiceSettings
    from scratchdet.service.inspector import inspector_from_model, tiny_random_inspector

    if (checkpoint is None) == (not tiny_random):
        raise typer.BadParameter("give either CHECKPOINT or --tiny-random (exactly one)")
    if checkpoint is not None and not checkpoint.is_file():
        raise typer.BadParameter(f"model file {checkpoint} does not exist",
                                 param_hint="CHECKPOINT")
    try:
        flips = parse_tta(tta)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--tta") from None
    try:  # loaded before the server starts: a model that cannot run stops here, exit 2
        inspector = (inspector_from_model(checkpoint, max_side=max_side, tta=flips)
                     if checkpoint is not None else tiny_random_inspector())
    except (ValueError, OSError) as err:
        typer.echo(f"error: cannot serve {checkpoint}: {err}", err=True)
        raise typer.Exit(2) from None
    except ImportError as err:  # --tiny-random in a station install
        typer.echo(f"error: --tiny-random needs torch ({err.name} missing): "
                   "pip install 'scratchdet[train]'", err=True)
        raise typer.Exit(2) from None
    spec = inspector.spec
    try:
        threshold, how = resolve_threshold(threshold, threshold_from, threshold_group,
                                           default=spec.threshold if spec else 0.5)
    except (ValueError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err), param_hint="--threshold-from") from None
    if how is None and spec is not None and spec.threshold_source != "default":
        how = f"threshold {threshold:.4g} from the model ({spec.threshold_source})"
    if how:
        typer.echo(how)
    settings = ServiceSettings(
        db_url=db,
        storage_dir=storage,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_pixels=int(max_megapixels * 1_000_000),
        max_concurrency=max_concurrency,
        queue_timeout_s=queue_timeout,
        request_timeout_s=request_timeout,
        default_threshold=threshold,
    )
    uvicorn.run(create_app(inspector, settings), host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
