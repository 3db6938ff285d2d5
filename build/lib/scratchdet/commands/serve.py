"""``scratchdet serve MODEL``: the inspection web service (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scratchdet.commands import options
from scratchdet.commands.extras import open_database

DEFAULT_DB = "sqlite:///scratchdet-service/history.db"


def _load_inspector(checkpoint: Path | None, tiny_random: bool, max_side: int | None,
                    tta: str, runtime: str = "auto", threads: int = 0,
                    nested: str | None = None) -> Any:
    """The inspector to serve; a model that cannot run stops here with exit 2."""
    from scratchdet.geometry.nested import parse_nested
    from scratchdet.inference.tta import parse_tta
    from scratchdet.service.inspector import inspector_from_model, tiny_random_inspector

    _check_model_argument(checkpoint, tiny_random)
    try:
        flips = parse_tta(tta)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--tta") from None
    try:
        rule = None if nested is None else parse_nested(nested)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--nested") from None
    try:  # loaded before the server starts
        return (inspector_from_model(checkpoint, max_side=max_side, tta=flips, runtime=runtime,
                                     threads=threads or None, nested=rule)
                if checkpoint is not None else tiny_random_inspector())
    except (ValueError, OSError) as err:
        typer.echo(f"error: cannot serve {checkpoint}: {err}", err=True)
        raise typer.Exit(2) from None
    except ImportError as err:  # --tiny-random in a station install
        typer.echo(f"error: --tiny-random needs torch ({err.name} missing): "
                   "pip install 'scratchdet[train]'", err=True)
        raise typer.Exit(2) from None


def _check_model_argument(checkpoint: Path | None, tiny_random: bool) -> None:
    """Exit 2 (a usage error) unless exactly one of MODEL and --tiny-random is given and the
    model file exists: checked before anything, the history database included, is made."""
    if (checkpoint is None) == (not tiny_random):
        raise typer.BadParameter("give either MODEL or --tiny-random (exactly one)")
    if checkpoint is not None and not checkpoint.is_file():
        raise typer.BadParameter(f"model file {checkpoint} does not exist", param_hint="MODEL")


def _check_access(host: str, auth: bool, db: str) -> None:
    """Refuse (exit 2) a history database that cannot be opened, --no-auth off loopback, and
    a reachable service without any key."""
    from scratchdet.service.db import open_history
    from scratchdet.service.security import startup_refusal

    open_database(open_history, db).close()  # migrated now; a server that is down: exit 2
    refusal = startup_refusal(host, auth, db)
    if refusal is not None:
        typer.echo(f"error: {refusal}", err=True)
        raise typer.Exit(2)
    if not auth:
        typer.echo(f"warning: access control is OFF (--no-auth); loopback {host} only")


def serve(
    checkpoint: Path | None = typer.Argument(
        None, metavar="MODEL", show_default=False, help="Model to serve: model.onnx (no torch "
        "needed), model.pt or a training .ckpt; loaded once, before the server starts."),
    tiny_random: bool = typer.Option(
        False, "--tiny-random",
        help="Serve a tiny detector with RANDOM weights instead (smoke and load tests only).",
    ),
    runtime: str = options.RUNTIME,
    threads: int = options.THREADS,
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy URL of the history and keys."),
    storage: Path = typer.Option(
        Path("scratchdet-service/photos"), "--storage", help="Folder for uploaded photos."
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="No API keys (everyone is admin): loopback --host only."),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="Host name clients use to reach the service (repeatable; "
        "localhost, 127.0.0.1, ::1 and a concrete --host are always allowed; * allows any)."),
    max_upload_mb: float = typer.Option(40.0, help="Largest photo file, MiB."),
    max_megapixels: float = typer.Option(
        16.0, help="Largest photo, megapixels (the sample's 4608x3072 is 14.2)."),
    max_concurrency: int = typer.Option(2, help="Inspections running at once."),
    queue_timeout: float = typer.Option(30.0, help="Seconds to wait for a slot, then 503."),
    request_timeout: float = typer.Option(120.0, help="Seconds one inspection may take, then 504."),
    db_busy_timeout: float = typer.Option(
        2.0, help="Seconds to wait on a locked history database, then 503 + Retry-After."),
    keep_days: float | None = typer.Option(
        None, min=0.001, help="Drop inspections (row and photo) older than this many days."),
    max_photos: int | None = typer.Option(
        None, min=1, help="Keep at most this many inspections (the oldest go first)."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
    threshold_min: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Lowest threshold a viewer/operator key may send "
        "(default: the service's threshold; admins may send any)."),
    threshold_max: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Highest threshold a viewer/operator key may send."),
    max_side: int | None = typer.Option(
        None, help="Run the checkpoint on a copy shrunk to this longer side (default: full size)."
    ),
    tta: str = typer.Option(
        "", "--tta", help="Test-time flips (h, v, hv; comma-separated): ~2.4x slower per photo."),
    nested: str | None = options.NESTED,
    shifts: str = typer.Option(
        "6,14,22", help="Local hours the shifts start at (the page's pass rate per shift)."),
) -> None:
    """Serve POST /v1/inspect, the history, overlays, /healthz, /readyz and the web page at /.

    API keys are required unless --no-auth (loopback only): scratchdet token create.
    """
    import uvicorn

    from scratchdet.evaluation.verdict_threshold import resolve_threshold
    from scratchdet.service.app import create_app
    from scratchdet.service.config import DEFAULT_HOSTS, ServiceSettings
    from scratchdet.service.passrate import parse_shifts
    from scratchdet.service.security import is_loopback

    try:
        shift_starts = parse_shifts(shifts)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--shifts") from None
    _check_model_argument(checkpoint, tiny_random)
    _check_access(host, not no_auth, db)
    inspector = _load_inspector(checkpoint, tiny_random, max_side, tta, runtime, threads,
                                nested)
    options.note(getattr(inspector, "note", None))
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
    concrete = [host] if host not in ("0.0.0.0", "::") and not is_loopback(host) else []
    try:
        settings = ServiceSettings(
            db_url=db, storage_dir=storage, auth=not no_auth,
            allowed_hosts=(*DEFAULT_HOSTS, *concrete, *allowed_host),
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            max_pixels=int(max_megapixels * 1_000_000), max_concurrency=max_concurrency,
            queue_timeout_s=queue_timeout, request_timeout_s=request_timeout,
            db_busy_timeout_s=db_busy_timeout, keep_days=keep_days, max_photos=max_photos,
            default_threshold=threshold, threshold_min=threshold_min,
            threshold_max=threshold_max, shift_starts=shift_starts,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    uvicorn.run(create_app(inspector, settings), host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
