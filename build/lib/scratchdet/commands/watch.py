"""``scratchdet watch MODEL FOLDER``: a hot folder; each photo dropped there is inspected once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

from scratchdet.commands import options


def watch(
    checkpoint: Path = options.model_argument(),
    folder: Path = typer.Argument(..., metavar="FOLDER",
                                  help="The folder the camera writes photos into."),
    out: Path | None = options.out_option(
        None, "Ledger, verdicts.csv and one JSON per photo (default: FOLDER/scratchdet-watch)."),
    threshold: float | None = options.THRESHOLD,
    threshold_from: Path | None = options.THRESHOLD_FROM,
    threshold_group: str = options.THRESHOLD_GROUP,
    runtime: str = options.RUNTIME,
    device: str = options.DEVICE,
    threads: int = options.THREADS,
    tta: str = options.TTA,
    nested: str | None = options.NESTED,
    move_to: Path | None = typer.Option(
        None, "--move-to", help="Move each photo here once inspected (default: leave it)."),
    split_by_verdict: bool = typer.Option(
        False, "--split-by-verdict", help="With --move-to: into pass/, fail/, unreadable/."),
    queue: int = typer.Option(32, "--queue", min=1, help="Photos waiting for inspection, "
                              "at most; when full, scanning waits."),
    poll: float = typer.Option(1.0, "--poll", min=0.01, help="Seconds between scans."),
    settle: float = typer.Option(
        2.0, "--settle", min=0.0, help="A photo is inspected once its size and mtime have "
        "not changed for this many seconds (and it decodes)."),
    give_up: float = typer.Option(
        10.0, "--give-up", min=0.0, help="A settled file still undecodable this many seconds "
        "later is recorded unreadable."),
    once: bool = typer.Option(False, "--once", help="Inspect what is there, then exit."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Watch sub-folders too."),
    ext: str = typer.Option("jpg,jpeg,png,bmp,tif,tiff", "--ext",
                            help="Photo suffixes, comma-separated (any case)."),
    pattern: str = typer.Option("*", "--glob", help="Only file names matching this glob."),
    db: str | None = typer.Option(
        None, "--db", help="Also add each inspection to this service history (SQLAlchemy "
        "URL, as for serve), so the operator page lists it."),
    storage: Path | None = typer.Option(
        None, "--storage", help="With --db: copy each photo into the service's photo "
        "folder (default: the history points at the photo where watch leaves it)."),
) -> None:
    """Inspect each photo dropped into FOLDER once; one line per photo on stdout.

    Stops after the current photo on Ctrl-C or SIGTERM (exit 0); a restart goes on where it
    stopped. Exit 2 for a missing folder, a model that cannot be loaded or bad options.
    """
    from scratchdet.commands.predict import open_predictor
    from scratchdet.inference.watch import WatchError, WatchOptions, photo_inspector, run_watch

    if not folder.is_dir():
        _fail(f"{folder}: no such folder to watch")
    if storage is not None and db is None:
        _fail("--storage is for the history's photos: give --db too")
    if split_by_verdict and move_to is None:
        _fail("--split-by-verdict needs --move-to")
    suffixes = tuple("." + s.strip().lstrip(".").lower() for s in ext.split(",") if s.strip())
    opts = WatchOptions(folder, out or folder / "scratchdet-watch", move_to, split_by_verdict,
                        queue, poll, settle, give_up, once, recursive, suffixes, pattern)
    try:
        model, predictor, level, how = open_predictor(
            checkpoint, runtime=runtime, device=device, threads=threads, threshold=threshold,
            threshold_from=threshold_from, threshold_group=threshold_group, tta=tta,
            nested=nested)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    options.note(model.note)
    hooks, history = _history_hook(db, storage)
    _note(how or f"threshold {level:.4g}")
    _note(f"watching {folder} ({model.runtime}); writing to {opts.out}"
          + ("" if once else "; Ctrl-C stops after the current photo"))
    inspect = photo_inspector(predictor, model.spec.category_ids, level, model.model_id)
    try:
        counts = _run(run_watch, opts, inspect, hooks)
    except WatchError as err:
        _fail(str(err))
    finally:
        if history is not None:
            history.close()
    _note("done: " + (", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no photos"))


def _run(run_watch: Any, opts: Any, inspect: Any, hooks: list[Any]) -> dict[str, int]:
    import threading

    from scratchdet.inference.watch import stop_on_signals

    stop = threading.Event()
    with stop_on_signals(stop, _note):
        return run_watch(opts, inspect, hooks=hooks, report=typer.echo, note=_note, stop=stop)


def _history_hook(db: str | None, storage: Path | None) -> tuple[list[Any], Any]:
    """The hook writing service history rows (none without ``--db``), and the history."""
    if db is None:
        return [], None
    from scratchdet.commands.extras import open_database
    from scratchdet.service.db import open_history
    from scratchdet.service.recording import watch_recorder

    history = open_database(open_history, db)
    return [watch_recorder(history, storage)], history


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
