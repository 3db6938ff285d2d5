"""Continuing an interrupted ``crossval`` run in its own folder (``crossval --resume``).

A 48-epoch cross-validation trains for one to three hours on a 2-core machine; a reboot or a
closed terminal should not cost the folds that finished. Every run writes ``run.json`` (the
settings its folds depend on) and, as each fold ends, ``fold<i>/fold.json`` (its facts and its
out-of-fold detections). ``--resume`` checks that the new command asks for the same run, keeps
the finished folds, restarts a fold that was cut short from its newest readable training
checkpoint (``fold<i>/runs/model/checkpoints``: ``last.ckpt``, else the newest epoch file),
and trains the others from scratch. Every fold trains with the run's own copy of the config
(``config.yaml``, written when the run started), whatever the file says now. Into a missing
or empty folder ``--resume`` starts the run (the same command starts and continues it); a
folder that holds other files but no ``run.json`` is refused, so nothing there is overwritten.

The resumed fold continues Lightning's training state (epoch, step, optimizer, schedule);
its data order after the checkpoint differs from an uninterrupted run's, like any rerun on
another machine. Its ``train_minutes`` counts the minutes of the session that finished it and
``resumed_from`` names the checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scratchdet.config import ConfigError, resolve_config
from scratchdet.io import write_json_atomic
from scratchdet.training.fit import check_resume

RUN_FILE = "run.json"
FOLD_FILE = "fold.json"
#: Settings a resumed run must share with the run it continues (``only_folds``, ``jobs``,
#: ``bootstrap`` and the sample's location may differ).
RECORDED = ("folds", "seed", "splits", "overrides", "max_single", "tta", "scale", "nested",
            "red_polarity", "mine_from")


def run_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``run.json``: the :data:`RECORDED` settings, as JSON values."""
    out: dict[str, Any] = {}
    for key in RECORDED:
        value = settings[key]
        if isinstance(value, tuple | list):
            value = list(value)
        elif isinstance(value, Path):
            value = str(value)
        out[key] = value
    return out


def write_run_record(out: Path, record: Mapping[str, Any]) -> None:
    """``<out>/run.json``."""
    write_json_atomic(out / RUN_FILE, dict(record), force=True, indent=1)


def check_same_run(out: Path, record: Mapping[str, Any], config: Path,
                   log: Callable[[str], None]) -> Path | None:
    """The config a resumed run trains with (``<out>/config.yaml``), after checking that
    ``record`` asks for the run in ``out``; None when ``out`` is missing or empty (nothing to
    resume yet: the run starts there, so one command both starts and continues a run).

    Raises:
        ConfigError: ``out`` holds files but no run to resume, or the run was started with
            other settings (each difference named, with the value the run used).
    """
    stored = out / RUN_FILE
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        log(f"--resume: {out} holds nothing yet; starting the run there")
        return None
    if not stored.is_file():
        raise ConfigError(f"--resume: {out} holds no crossval run to continue (no {RUN_FILE}; "
                          "runs started before --resume existed cannot be resumed)")
    try:
        earlier = json.loads(stored.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"--resume: {stored}: not readable JSON ({err})") from None
    diffs = [f"{k}={earlier.get(k)!r} (this command: {v!r})" for k, v in record.items()
             if earlier.get(k) != v]
    if diffs:
        raise ConfigError(f"--resume: {out} was run with " + ", ".join(diffs)
                          + "; resume with the run's settings, or start a new --out")
    snapshot = out / "config.yaml"
    if not snapshot.is_file():
        raise ConfigError(f"--resume: {snapshot}: the run's copy of its config is missing")
    given = resolve_config(config)
    if given.resolve() != snapshot.resolve() and given.read_text() != snapshot.read_text():
        log(f"note: {given} has changed since the run started; the folds train with the "
            f"run's own copy {snapshot}")
    return snapshot


def save_fold(fold_dir: Path, facts: Mapping[str, Any],
              detections: Sequence[Mapping[str, Any]]) -> None:
    """``fold<i>/fold.json``: a finished fold's facts and out-of-fold detections."""
    write_json_atomic(fold_dir / FOLD_FILE, {"facts": dict(facts),
                                             "detections": list(detections)}, force=True)


def finished_fold(fold_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(facts, detections) of a fold that finished, or None (no or unreadable ``fold.json``:
    the fold runs again)."""
    path = fold_dir / FOLD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return dict(data["facts"]), list(data["detections"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget_fold(fold_dir: Path) -> None:
    """Drop a fold's ``fold.json`` (a fresh run into a folder that held an earlier one)."""
    (fold_dir / FOLD_FILE).unlink(missing_ok=True)


def resume_checkpoint(fold_dir: Path) -> Path | None:
    """The newest readable training checkpoint of a fold cut short, or None.

    ``last.ckpt`` first, then the epoch checkpoints, newest first; a file that cannot be
    read as a training checkpoint (cut off while written) is passed over.
    """
    ckpts = fold_dir / "runs" / "model" / "checkpoints"
    epochs = sorted(ckpts.glob("epoch*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in [ckpts / "last.ckpt", *epochs]:
        if not path.is_file():
            continue
        try:
            check_resume(path)
        except ConfigError:
            continue
        return path
    return None


def fold_difference(earlier: Mapping[str, int], now: Mapping[str, int]) -> str | None:
    """The first photo (by name) whose fold differs between two ``folds.json`` mappings, as
    "photo NAME is in fold A there and in fold B now" (``None`` for a missing photo); ``None``
    when they agree."""
    for name in sorted(set(earlier) | set(now)):
        if earlier.get(name) != now.get(name):
            return (f"photo {name} is in fold {earlier.get(name)} there and in fold "
                    f"{now.get(name)} now")
    return None


def check_same_folds(out: Path, folds_by_name: Mapping[str, int]) -> None:
    """Refuse to resume when the photos' folds differ from the run's ``folds.json``.

    Raises:
        ConfigError: naming the first photo whose fold differs (or that is new or gone).
    """
    try:
        earlier = json.loads((out / "folds.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"--resume: {out / 'folds.json'}: not readable ({err})") from None
    difference = fold_difference(earlier, folds_by_name)
    if difference is not None:
        raise ConfigError(
            f"--resume: {out / 'folds.json'}: {difference} (other photos in the "
            "sample?); resume with the run's photos, or start a new --out")
