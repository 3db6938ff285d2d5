"""A hot folder: inspect each photo a camera drops into a folder, once (``scratchdet watch``).

A :class:`Scanner` thread lists the folder every ``poll_s`` seconds and hands each complete
photo not yet done to a bounded queue; the calling thread takes them one at a time,
inspects them and finishes them (:class:`~scratchdet.inference.watch_outputs.Outputs`). A
photo is complete when its size and mtime have not changed for ``settle_s`` seconds and it
decodes; one that stays undecodable ``give_up_s`` seconds longer is recorded ``unreadable``.
Names of files being written (``.part``, ``.tmp``, ... or a leading ``.`` or ``~``) are
never picked up. What is done is kept in the output folder's ledger, so a restart neither
inspects a photo again nor skips one; one ``watch`` at a time may use an output folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratchdet.imaging import open_shrunk
from scratchdet.inference import run
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.inference.watch_outputs import Hook, Ledger, Outputs, photo_record, verdict_line

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: Suffixes of files still being written or downloaded.
TEMP_SUFFIXES = (".part", ".tmp", ".temp", ".partial", ".crdownload", ".download", ".filepart")
LOCK_FILE = ".watch.lock"
_DONE = object()  # the scanner's last queue item in --once mode

Inspect = Callable[["Arrival"], dict[str, Any]]


class WatchError(ValueError):
    """A hot folder that cannot be watched (missing folder, output folder in use)."""


@dataclass(frozen=True)
class WatchOptions:
    """Where to watch and write, and how (the ``scratchdet watch`` options)."""

    folder: Path
    out: Path
    move_to: Path | None = None
    split_by_verdict: bool = False
    queue_size: int = 32
    poll_s: float = 1.0
    settle_s: float = 2.0
    give_up_s: float = 10.0
    once: bool = False
    recursive: bool = False
    suffixes: tuple[str, ...] = PHOTO_SUFFIXES
    pattern: str = "*"


@dataclass(frozen=True)
class Arrival:
    """A complete photo found in the folder (``error``: it never decoded)."""

    path: Path
    file: str
    size: int
    mtime_ns: int
    width: int = 0
    height: int = 0
    error: str | None = None

    @property
    def key(self) -> str:
        """What the ledger knows the photo by: name, size and mtime."""
        return f"{self.file}|{self.size}|{self.mtime_ns}"


def is_candidate(name: str, suffixes: Sequence[str] = PHOTO_SUFFIXES,
                 pattern: str = "*") -> bool:
    """A file name ``watch`` picks up: a photo suffix, matching ``pattern``, not temporary."""
    lower = name.lower()
    if name.startswith((".", "~")) or lower.endswith(TEMP_SUFFIXES):
        return False
    return lower.endswith(tuple(s.lower() for s in suffixes)) and fnmatch.fnmatch(name, pattern)


def list_photos(opts: WatchOptions, skip: Sequence[Path] = ()) -> Iterator[tuple[Path, str]]:
    """``(path, name relative to the folder)`` of the candidate files, sorted by name; the
    folders in ``skip`` (the output and move-to folders) and hidden folders are left out."""
    skipped = {os.path.realpath(p) for p in skip}
    folders = [opts.folder]
    while folders:
        folder = folders.pop()
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if (opts.recursive and not entry.name.startswith(".")
                        and os.path.realpath(entry.path) not in skipped):
                    folders.append(Path(entry.path))
            elif entry.is_file() and is_candidate(entry.name, opts.suffixes, opts.pattern):
                path = Path(entry.path)
                yield path, path.relative_to(opts.folder).as_posix()


@dataclass
class _Seen:
    signature: tuple[int, int]
    since: float


@dataclass
class Scanner:
    """Finds complete photos not yet done and puts them on ``out_queue`` (bounded: when it
    is full the scan waits, and says so once through ``note``)."""

    opts: WatchOptions
    is_done: Callable[[str], bool]
    out_queue: queue.Queue[Any]
    note: Callable[[str], None]
    stop: threading.Event
    skip: Sequence[Path] = ()
    clock: Callable[[], float] = time.monotonic
    error: BaseException | None = None
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _queued: set[str] = field(default_factory=set)
    _said_full: bool = False
    _said_unlisted: bool = False

    def run(self) -> None:
        """Scan every ``poll_s`` until ``stop``; with ``once``, until nothing is pending."""
        try:
            while not self.stop.is_set():
                pending = self.scan()
                if self.opts.once and pending == 0:
                    self._put(_DONE)
                    return
                self.stop.wait(self.opts.poll_s)
        except BaseException as err:  # handed to the worker, which raises it
            self.error = err
            self.stop.set()

    def scan(self) -> int:
        """One pass over the folder; returns how many files are still pending."""
        now, pending, present = self.clock(), 0, set()
        try:
            found = list(list_photos(self.opts, self.skip))
        except OSError as err:
            if not self._said_unlisted:
                self.note(f"warning: cannot list {self.opts.folder} ({err}); trying again")
                self._said_unlisted = True
            return 1
        for path, name in found:
            try:
                st = path.stat()
            except OSError:
                continue  # removed meanwhile
            arrival = Arrival(path, name, st.st_size, st.st_mtime_ns)
            present.add(arrival.key)
            if arrival.key in self._queued or self.is_done(arrival.key):
                continue
            ready = self._check(arrival, now)
            if ready is None:
                pending += 1
            elif not self._put(ready):
                return pending
        names = {name for _, name in found}
        self._queued &= present
        self._seen = {k: v for k, v in self._seen.items() if k in names}
        return pending

    def _check(self, arrival: Arrival, now: float) -> Arrival | None:
        """``arrival`` with its size once complete, with its error once given up; else None."""
        signature = (arrival.size, arrival.mtime_ns)
        seen = self._seen.get(arrival.file)
        if seen is None or seen.signature != signature:
            self._seen[arrival.file] = _Seen(signature, now)
            if self.opts.settle_s > 0:
                return None
            seen = self._seen[arrival.file]
        if now - seen.since < self.opts.settle_s:
            return None
        try:
            _, (width, height) = open_shrunk(arrival.path, 64)
        except ValueError as err:
            if now - seen.since < self.opts.settle_s + self.opts.give_up_s:
                return None  # maybe still being written, with a pause
            reason = str(err).removeprefix(f"{arrival.path}: ")
            return Arrival(arrival.path, arrival.file, arrival.size, arrival.mtime_ns,
                           error=reason)
        return Arrival(arrival.path, arrival.file, arrival.size, arrival.mtime_ns, width, height)

    def _put(self, item: Any) -> bool:
        """Queue ``item``, waiting while the queue is full; ``False`` when stopped."""
        while not self.stop.is_set():
            try:
                self.out_queue.put(item, timeout=0 if not self._said_full else 0.2)
            except queue.Full:
                if not self._said_full:
                    self.note(f"queue full ({self.out_queue.maxsize} photos waiting): "
                              "scanning waits for the inspection")
                    self._said_full = True
                continue
            if isinstance(item, Arrival):
                self._queued.add(item.key)
                self._seen.pop(item.file, None)
            return True
        return False


def photo_inspector(predictor: TiledPredictor, category_ids: Sequence[int], threshold: float,
                    model_id: str) -> Inspect:
    """Inspect an arrival with the predictor as ``scratchdet predict`` does; its record."""

    def inspect(arrival: Arrival) -> dict[str, Any]:
        if arrival.error is not None:
            return photo_record(arrival, None, threshold, model_id)
        try:
            [result] = run.predict_photos(predictor, [arrival.path], {arrival.path.name: 0},
                                          category_ids)
        except Exception as err:  # not a photo's fault alone; still, the station goes on
            return photo_record(arrival, None, threshold, model_id,
                                error=f"inspection failed ({type(err).__name__}: {err})")
        return photo_record(arrival, result, threshold, model_id)

    return inspect


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, note: Callable[[str], None]) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the photo being inspected is finished first); a second
    one interrupts at once. Handlers are installed only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        note(f"{signal.Signals(signum).name}: stopping after the current photo")
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock file for the run.

    Raises:
        WatchError: another ``watch`` holds it.
    """
    out.mkdir(parents=True, exist_ok=True)
    with (out / LOCK_FILE).open("a+") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise WatchError(f"{out}: another scratchdet watch is using this output "
                             "folder") from None
        yield


def run_watch(opts: WatchOptions, inspect: Inspect, *, hooks: Sequence[Hook] = (),
              report: Callable[[str], None] = print, note: Callable[[str], None] = print,
              stop: threading.Event | None = None) -> dict[str, int]:
    """Watch ``opts.folder`` until ``stop`` is set (or, with ``once``, until every photo there
    is done); ``report`` gets one line per photo. Returns counts per verdict.

    Raises:
        WatchError: the folder is missing, or the output folder is in use.
    """
    if not opts.folder.is_dir():
        raise WatchError(f"{opts.folder}: no such folder to watch")
    stop = stop or threading.Event()
    counts: dict[str, int] = {}
    with output_lock(opts.out):
        ledger = Ledger(opts.out, note)
        try:
            outputs = Outputs(opts.out, ledger, opts.move_to, opts.split_by_verdict, hooks)
            for rec in ledger.unfinished():
                _finish(outputs, rec, counts, report, note, resumed=True)
            _work(opts, inspect, ledger, outputs, counts, report, note, stop)
        finally:
            ledger.close()
    return counts


def _work(opts: WatchOptions, inspect: Inspect, ledger: Ledger, outputs: Outputs,
          counts: dict[str, int], report: Callable[[str], None],
          note: Callable[[str], None], stop: threading.Event) -> None:
    """Take arrivals off the queue and inspect and finish them, until told to stop."""
    arrivals: queue.Queue[Any] = queue.Queue(maxsize=opts.queue_size)
    skip = [p for p in (opts.out, opts.move_to) if p is not None]
    scanner = Scanner(opts, lambda key: ledger.status(key) is not None, arrivals, note, stop,
                      skip)
    thread = threading.Thread(target=scanner.run, name="watch-scanner", daemon=True)
    thread.start()
    try:
        while not stop.is_set():
            try:
                item = arrivals.get(timeout=0.2)
            except queue.Empty:
                if not thread.is_alive():
                    break
                continue
            if item is _DONE:
                break
            rec = _inspect(item, inspect, note)
            if rec is not None:
                ledger.record(rec)
                _finish(outputs, rec, counts, report, note)
    finally:
        stop.set()
        thread.join(timeout=5)
    if scanner.error is not None:
        raise scanner.error


def _inspect(arrival: Arrival, inspect: Inspect, note: Callable[[str], None],
             ) -> dict[str, Any] | None:
    """The record of ``arrival``; ``None`` when it changed or went since it was found."""
    try:
        st = arrival.path.stat()
    except OSError:
        note(f"warning: {arrival.file} went away before its inspection")
        return None
    if (st.st_size, st.st_mtime_ns) != (arrival.size, arrival.mtime_ns):
        return None  # written again: the scanner finds it anew once it settles
    return inspect(arrival)


def _finish(outputs: Outputs, rec: dict[str, Any], counts: dict[str, int],
            report: Callable[[str], None], note: Callable[[str], None],
            resumed: bool = False) -> None:
    try:
        outputs.finish(rec, resumed)
    except Exception as err:  # the record stays "inspected": the next start finishes it
        note(f"warning: {rec['file']}: outputs not all written ({type(err).__name__}: {err}); "
             "finished at the next start")
    report(verdict_line(rec))
    counts[rec["verdict"]] = counts.get(rec["verdict"], 0) + 1
