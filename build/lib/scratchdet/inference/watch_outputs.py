"""What ``scratchdet watch`` keeps and writes in its output folder.

- ``ledger.jsonl``: one JSON line per change of a photo's state, keyed by its name (relative
  to the watched folder), size and mtime. ``inspected``: the verdict is known, its outputs
  are being written (a restart finishes them without inspecting again); ``done``: finished
  (unreadable photos too). Each line is flushed and fsync'ed; a torn last line (a killed
  process) is ignored on start, when the ledger is rewritten compacted (atomic).
- ``results/<name>.json``: the record of each photo (verdict, best score, boxes at the
  threshold in original pixels ``[x, y, w, h]``, timings, where the photo went).
- ``verdicts.csv``: one line per photo, appended (:data:`CSV_FIELDS`).

:func:`move_photo` moves a photo without ever overwriting: a name already taken gets ``-1``,
``-2``, ... before its suffix.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from scratchdet.inference.run import TIMING_KEYS, PhotoResult
from scratchdet.io import write_json_atomic, write_text_atomic

LEDGER = "ledger.jsonl"
VERDICTS = "verdicts.csv"
RESULTS = "results"
CSV_FIELDS = ("inspected_at", "file", "verdict", "max_score", "threshold", "n_boxes", "tiles",
              *(f"{k}_ms" for k in TIMING_KEYS), "moved_to", "error")
#: Verdicts of photos that were not inspected: undecodable, or the inspection failed.
NOT_INSPECTED = ("unreadable", "error")
#: A hook called with each finished record (e.g. the service history's recorder).
Hook = Callable[[dict[str, Any]], None]


def photo_record(arrival: Any, result: PhotoResult | None, threshold: float, model_id: str,
                 error: str | None = None) -> dict[str, Any]:
    """The record of one photo (``arrival``: a :class:`scratchdet.inference.watch.Arrival`).

    ``result`` is ``None`` or carries ``error`` when the photo could not be inspected; a
    decoding failure gives verdict ``unreadable``, any other ``error`` (with ``error``).
    """
    rec: dict[str, Any] = {
        "key": arrival.key, "file": arrival.file, "path": str(arrival.path),
        "size": arrival.size, "mtime_ns": arrival.mtime_ns, "width": arrival.width,
        "height": arrival.height, "status": "inspected", "threshold": threshold,
        "model_id": model_id,
        "inspected_at": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "verdict": "error", "max_score": None, "n_boxes": 0, "boxes": [], "tiles": 0,
        "timings_ms": {}, "moved_to": None, "error": error,
    }
    if result is not None and result.error is not None:
        prefix = f"{arrival.path}: "
        reason = result.error.removeprefix(prefix)
        rec.update(verdict="unreadable", error=reason)
    elif result is not None:
        boxes = [{k: d[k] for k in ("bbox", "score", "category_id")}
                 for d in result.boxes_at(threshold)]
        rec.update(verdict=result.verdict(threshold), max_score=round(result.max_score(), 5),
                   n_boxes=len(boxes), boxes=boxes, tiles=result.tiles, error=None,
                   timings_ms={f"{k}_ms": round(1000 * v, 1) for k, v in result.timings.items()})
    elif arrival.error is not None and error is None:
        rec.update(verdict="unreadable", error=arrival.error)
    return rec


def _score(value: float, threshold: float) -> tuple[str, str]:
    """Both numbers with enough decimals that they do not print equal when they differ."""
    for digits in (2, 4, 6):
        a, b = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
        if a != b:
            break
    return a, b


def verdict_line(rec: dict[str, Any]) -> str:
    """The one stdout line of a photo: ``PASS  a.jpg  best 0.12 < 0.50  0.41 s``, ``FAIL ...``
    or ``SKIP  a.jpg: why``."""
    name = rec["file"]
    if rec["verdict"] in NOT_INSPECTED:
        line = f"SKIP  {name}: {rec['error']}"
    else:
        best, thr = _score(rec["max_score"], rec["threshold"])
        seconds = rec["timings_ms"].get("total_ms", 0.0) / 1000
        if rec["verdict"] == "pass":
            line = f"PASS  {name}  best {best} < {thr}  {seconds:.2f} s"
        else:
            boxes = f"{rec['n_boxes']} box" + ("es" if rec["n_boxes"] != 1 else "")
            line = f"FAIL  {name}  best {best} >= {thr}  {boxes}  {seconds:.2f} s"
    return line + (f"  -> {rec['moved_to']}" if rec.get("moved_to") else "")


class Ledger:
    """The photos ``watch`` has inspected (``<out>/ledger.jsonl``). One thread appends;
    others may ask :meth:`status`. ``note`` hears of ledger lines that cannot be read."""

    def __init__(self, out: Path, note: Callable[[str], None] = print) -> None:
        self.path = out / LEDGER
        self.entries: dict[str, dict[str, Any]] = _read_ledger(self.path, note)
        text = "".join(json.dumps(e) + "\n" for e in self.entries.values())
        write_text_atomic(self.path, text, force=True)  # compacted; a torn line dropped
        self._file = self.path.open("a", encoding="utf-8")

    def status(self, key: str) -> str | None:
        """``inspected``, ``done`` or ``None`` (never seen)."""
        entry = self.entries.get(key)
        return None if entry is None else entry["status"]

    def record(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` (its ``key`` and ``status``) and make it durable."""
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.entries[entry["key"]] = entry

    def unfinished(self) -> list[dict[str, Any]]:
        """Records inspected whose outputs were not all written (a killed run)."""
        return [dict(e) for e in self.entries.values() if e["status"] == "inspected"]

    def close(self) -> None:
        self._file.close()


def _read_ledger(path: Path, note: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return entries
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            entries[entry["key"]] = entry
        except (ValueError, KeyError, TypeError):
            if line.strip():  # only a killed write leaves a torn line, and only the last
                note(f"warning: {path}:{number}: unreadable ledger line ignored")
    return entries


class Outputs:
    """Finishes a photo: moves it, writes its JSON and CSV line, runs the hooks, marks it
    done in the ledger. Every step may run again after a restart without doubling."""

    def __init__(self, out: Path, ledger: Ledger, move_to: Path | None = None,
                 split_by_verdict: bool = False, hooks: Sequence[Hook] = ()) -> None:
        self.out, self.ledger, self.hooks = out, ledger, tuple(hooks)
        self.move_to, self.split = move_to, split_by_verdict
        (out / RESULTS).mkdir(parents=True, exist_ok=True)

    def finish(self, rec: dict[str, Any], resumed: bool = False) -> dict[str, Any]:
        """Do what is left of ``rec`` (ledger status ``inspected``); return it ``done``."""
        if self.move_to is not None:
            self._move(rec)
        rec["json"] = str(self._write_json(rec))
        if not (resumed and self._csv_has(rec)):
            self._append_csv(rec)
        for hook in self.hooks:
            hook(rec)
        rec["status"] = "done"
        self.ledger.record({k: rec[k] for k in ("key", "file", "status", "verdict",
                                                "moved_to", "json")})
        return rec

    def _move(self, rec: dict[str, Any]) -> None:
        src = Path(rec["path"])
        planned = rec.get("moving_to")
        if planned and Path(planned).exists() and (not src.exists()
                                                   or _same_file(src, Path(planned))):
            src.unlink(missing_ok=True)  # a killed run had moved (or linked) it already
            rec.update(path=planned, moved_to=planned)
            return
        if not src.exists():
            return  # gone meanwhile (moved by someone else): nothing to move
        sub = self.move_to / rec["verdict"] if self.split else self.move_to
        folder = sub / Path(rec["file"]).parent

        def plan(dst: Path) -> None:
            rec["moving_to"] = str(dst)
            self.ledger.record(rec)

        dst = move_photo(src, folder, before=plan)
        rec.update(path=str(dst), moved_to=str(dst))

    def _write_json(self, rec: dict[str, Any]) -> Path:
        stem = rec["file"].replace("/", "__")
        for n in itertools.count(1):
            path = self.out / RESULTS / (f"{stem}.json" if n == 1 else f"{stem}.{n}.json")
            if not path.exists() or _json_key(path) == rec["key"]:
                body = {k: v for k, v in rec.items() if k not in ("status", "moving_to")}
                return write_json_atomic(path, body, force=True, indent=1)
        raise AssertionError("unreachable")

    def _csv_row(self, rec: dict[str, Any]) -> dict[str, Any]:
        row = {k: rec.get(k) for k in CSV_FIELDS}
        if rec["max_score"] is not None:
            row["max_score"] = f"{rec['max_score']:.4f}"
        row.update(rec["timings_ms"])
        row["error"] = rec["error"] or ""
        row["moved_to"] = rec["moved_to"] or ""
        return row

    def _append_csv(self, rec: dict[str, Any]) -> None:
        path = self.out / VERDICTS
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n",
                                extrasaction="ignore")
        if not path.is_file() or path.stat().st_size == 0:
            writer.writeheader()
        writer.writerow(self._csv_row(rec))
        with path.open("a", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def _csv_has(self, rec: dict[str, Any]) -> bool:
        path = self.out / VERDICTS
        if not path.is_file():
            return False
        with path.open(encoding="utf-8", newline="") as f:
            return any(row.get("file") == rec["file"]
                       and row.get("inspected_at") == rec["inspected_at"]
                       for row in csv.DictReader(f))


def _json_key(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names (a hard link), or a copy with the same size and mtime."""
    try:
        if os.path.samefile(a, b):
            return True
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return (sa.st_size, sa.st_mtime_ns) == (sb.st_size, sb.st_mtime_ns)


def free_names(folder: Path, name: str) -> Iterator[Path]:
    """``folder/name``, then ``stem-1.suffix``, ``stem-2.suffix``, ... (an endless iterator)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    yield folder / name
    for n in itertools.count(1):
        yield folder / f"{stem}-{n}{suffix}"


def move_photo(src: Path, folder: Path,
               before: Callable[[Path], None] | None = None) -> Path:
    """Move ``src`` into ``folder`` under its own name, or the first free ``stem-N`` name:
    an existing file is never overwritten and ``src`` is removed only once the copy is whole.
    ``before(dst)`` runs just before each try (``watch`` records the plan in its ledger)."""
    folder.mkdir(parents=True, exist_ok=True)
    for dst in free_names(folder, src.name):
        if dst.exists():
            continue
        if before is not None:
            before(dst)
        if _place(src, dst):
            src.unlink()
            return dst
    raise AssertionError("unreachable")


def _place(src: Path, dst: Path) -> bool:
    """Give ``src``'s content the name ``dst`` unless ``dst`` exists (then ``False``)."""
    try:
        os.link(src, dst)  # atomic, and refuses an existing name
        return True
    except FileExistsError:
        return False
    except OSError:  # another file system, or one without hard links: copy, then rename
        pass
    tmp = dst.with_name(f".{dst.name}.watch.part")
    shutil.copy2(src, tmp)
    try:
        os.link(tmp, dst)
    except FileExistsError:
        return False
    except OSError:
        if dst.exists():
            return False
        os.replace(tmp, dst)
        return True
    finally:
        tmp.unlink(missing_ok=True)
    return True
