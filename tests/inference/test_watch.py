"""``scratchdet watch``: settling, exactly-once with restarts, unreadable files, moving
without overwriting, the bounded queue. The library tests use a fake detector (a dark line
fails a photo); the command tests the untrained model."""

from __future__ import annotations

import csv
import io
import json
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.inference.watch import (
    _DONE,
    Arrival,
    Scanner,
    WatchOptions,
    is_candidate,
    photo_inspector,
    run_watch,
)
from scratchdet.inference.watch_outputs import LEDGER, VERDICTS, move_photo
from scratchdet.structures import Detections


class DarkLine:
    """Fake detector: a box around the dark pixels of the photo, score 0.9."""

    def __call__(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for img in images:
            ys, xs = np.nonzero(img.mean(2) < 60)
            out.append(Detections.from_arrays(
                [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], [0.9], [1])
                if len(xs) else Detections.empty())
        return out


def jpeg_bytes(scratched: bool, seed: int = 0) -> bytes:
    """A 320x240 light grey JPEG with noise (so it is not tiny); a dark line if scratched."""
    rng = np.random.default_rng(seed)
    img = rng.integers(150, 210, (240, 320, 3), dtype=np.uint8)
    if scratched:
        img[118:122, 60:260] = 10
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=95)
    return buf.getvalue()


class Counting:
    """The real photo inspector over the fake detector, noting each call and the file's size
    at that moment."""

    def __init__(self) -> None:
        predictor = TiledPredictor(DarkLine(), tile_size=1 << 20, batch_size=1,
                                   whole_photo=True)
        self.inner = photo_inspector(predictor, (1,), 0.5, "fake")
        self.calls: list[tuple[str, int]] = []

    def __call__(self, arrival: Arrival) -> dict[str, Any]:
        self.calls.append((arrival.file, arrival.path.stat().st_size))
        return self.inner(arrival)


def options(folder: Path, out: Path, **kw: Any) -> WatchOptions:
    settings: dict[str, Any] = {"poll_s": 0.05, "settle_s": 0.2, "give_up_s": 0.4, "once": True}
    settings.update(kw)
    return WatchOptions(folder, out, **settings)


def csv_rows(out: Path) -> list[dict[str, str]]:
    with (out / VERDICTS).open(newline="") as f:
        return list(csv.DictReader(f))


def ledger_status(out: Path) -> dict[str, str]:
    """File -> its last status in the ledger."""
    lines = (out / LEDGER).read_text().splitlines()
    return {e["file"]: e["status"] for e in map(json.loads, lines)}


def test_candidates_skip_temporary_and_hidden_names() -> None:
    table = {"a.jpg": True, "B.JPEG": True, "c.tif": True, "d.bmp": True, "e.png": True,
             "a.jpg.part": False, "a.tmp": False, ".a.jpg": False, "~a.jpg": False,
             "notes.txt": False, "a.jpg.crdownload": False}
    assert {name: is_candidate(name) for name in table} == table
    assert is_candidate("cam1_0001.jpg", pattern="cam1_*")
    assert not is_candidate("cam2_0001.jpg", pattern="cam1_*")
    assert not is_candidate("a.png", suffixes=(".jpg",))


def test_slowly_written_photo_is_inspected_once_when_complete(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    slow, renamed = jpeg_bytes(True, 1), jpeg_bytes(False, 2)
    step = len(slow) // 12 + 1
    (folder / "slow.jpg").write_bytes(slow[:step])
    (folder / "renamed.jpg.part").write_bytes(renamed[:step])

    def write() -> None:
        for start in range(step, len(slow), step):
            time.sleep(0.06)
            with (folder / "slow.jpg").open("ab") as f:
                f.write(slow[start:start + step])
            if start + step >= len(renamed) - step:  # a tool that writes then renames
                (folder / "renamed.jpg.part").write_bytes(renamed)
                (folder / "renamed.jpg.part").rename(folder / "renamed.jpg")

    writer = threading.Thread(target=write)
    writer.start()
    inspect, lines = Counting(), []
    counts = run_watch(options(folder, out, settle_s=0.3, give_up_s=30.0), inspect,
                       report=lines.append, note=lambda m: None)
    writer.join()
    assert sorted(inspect.calls) == [("renamed.jpg", len(renamed)), ("slow.jpg", len(slow))]
    assert counts == {"fail": 1, "pass": 1}
    assert sorted(line.split()[0] + " " + line.split()[1] for line in lines) == [
        "FAIL slow.jpg", "PASS renamed.jpg"]
    record = json.loads((out / "results" / "slow.jpg.json").read_text())
    assert record["size"] == len(slow) and record["verdict"] == "fail"
    assert record["boxes"][0]["bbox"] == [60.0, 118.0, 200.0, 4.0]


def test_restart_neither_repeats_nor_skips(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for k in range(5):
        (folder / f"p{k}.jpg").write_bytes(jpeg_bytes(k % 2 == 0, k))
    stop, first = threading.Event(), Counting()

    def stop_after_two(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            stop.set()  # as SIGTERM does: the current photo is finished, then the loop ends

    lines: list[str] = []
    run_watch(options(folder, out, queue_size=2), first, report=stop_after_two,
              note=lambda m: None, stop=stop)
    assert [c[0] for c in first.calls] == ["p0.jpg", "p1.jpg"]

    def crash(rec: dict[str, Any]) -> None:  # a kill between the outputs and "done"
        raise KeyboardInterrupt

    second = Counting()
    with pytest.raises(KeyboardInterrupt):
        run_watch(options(folder, out, move_to=tmp_path / "done"), second, hooks=[crash],
                  report=lines.append, note=lambda m: None)
    assert [c[0] for c in second.calls] == ["p2.jpg"]
    assert ledger_status(out)["p2.jpg"] == "inspected"  # outputs written, not marked done
    third, again = Counting(), []
    counts = run_watch(options(folder, out, move_to=tmp_path / "done"), third,
                       report=again.append, note=lambda m: None)
    assert [c[0] for c in third.calls] == ["p3.jpg", "p4.jpg"]  # p2 finished, not re-inspected
    assert [line.split()[1] for line in again] == ["p2.jpg", "p3.jpg", "p4.jpg"]
    assert counts == {"fail": 2, "pass": 1}
    files = [row["file"] for row in csv_rows(out)]
    assert sorted(files) == [f"p{k}.jpg" for k in range(5)]  # every photo once
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["p2.jpg", "p3.jpg", "p4.jpg"]
    assert ledger_status(out) == {f"p{k}.jpg": "done" for k in range(5)}
    assert run_watch(options(folder, out), Counting(), report=again.append,
                     note=lambda m: None) == {}


def test_move_never_overwrites(tmp_path: Path) -> None:
    folder, done = tmp_path / "in", tmp_path / "done"
    folder.mkdir()
    (done / "fail").mkdir(parents=True)
    (done / "fail" / "a.jpg").write_bytes(b"an older photo")
    data = jpeg_bytes(True)
    (folder / "a.jpg").write_bytes(data)
    lines: list[str] = []
    run_watch(options(folder, tmp_path / "out", move_to=done, split_by_verdict=True),
              Counting(), report=lines.append, note=lambda m: None)
    assert (done / "fail" / "a.jpg").read_bytes() == b"an older photo"
    assert (done / "fail" / "a-1.jpg").read_bytes() == data
    assert not (folder / "a.jpg").exists()
    [line] = lines
    assert re.fullmatch(rf"FAIL  a\.jpg  best 0\.90 >= 0\.50  1 box  \d+\.\d\d s  "
                        rf"-> {re.escape(str(done / 'fail' / 'a-1.jpg'))}", line), line
    (folder / "a.jpg").write_bytes(b"x")
    (folder / "b.jpg").write_bytes(b"y")
    assert move_photo(folder / "a.jpg", done / "fail") == done / "fail" / "a-2.jpg"
    assert move_photo(folder / "b.jpg", done) == done / "b.jpg"
    assert sorted(p.name for p in (done / "fail").iterdir()) == ["a-1.jpg", "a-2.jpg", "a.jpg"]


def test_full_queue_makes_the_scan_wait(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(5):
        (folder / f"p{k}.jpg").write_bytes(jpeg_bytes(False, k))
    arrivals: queue.Queue[Any] = queue.Queue(maxsize=2)
    notes: list[str] = []
    scanner = Scanner(options(folder, tmp_path / "out", settle_s=0.0), lambda key: False,
                      arrivals, notes.append, threading.Event())
    thread = threading.Thread(target=scanner.run)
    thread.start()
    deadline = time.monotonic() + 10
    while not notes and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert arrivals.qsize() == 2 and thread.is_alive()  # waiting for room, not dropping
    taken = []
    while (item := arrivals.get(timeout=10)) is not _DONE:  # a slow inspector
        taken.append(item.file)
        time.sleep(0.05)
    thread.join(timeout=10)
    assert taken == [f"p{k}.jpg" for k in range(5)]
    assert len(notes) == 1 and notes[0].startswith("queue full (2 photos waiting)")


def test_command_skips_unreadable_files_and_goes_on(untrained_model: Path,
                                                   tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    (folder / "bad.jpg").write_bytes(b"not a jpeg at all")
    good = jpeg_bytes(False)
    (folder / "half.jpg").write_bytes(good[: len(good) // 2])  # stays truncated
    (folder / "good.jpg").write_bytes(good)
    args = ["watch", str(untrained_model), str(folder), "--out", str(out), "--once",
            "--settle", "0.1", "--poll", "0.05", "--give-up", "0.3"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert len(lines) == 3, lines
    assert sorted(line.split()[:2] for line in lines if line.startswith("SKIP")) == [
        ["SKIP", "bad.jpg:"], ["SKIP", "half.jpg:"]]
    assert "half.jpg: cannot read as an image (image file is truncated" in res.stdout
    [verdict] = [line for line in lines if "good.jpg" in line]
    assert verdict.split()[0] in ("PASS", "FAIL") and verdict.endswith(" s")
    ledger = [json.loads(line) for line in (out / LEDGER).read_text().splitlines()]
    assert {e["file"]: e["verdict"] for e in ledger if e["status"] == "done"} == {
        "bad.jpg": "unreadable", "half.jpg": "unreadable", "good.jpg": verdict.split()[0].lower()}
    again = CliRunner().invoke(app, args)  # recorded: not tried again
    assert again.exit_code == 0 and again.stdout == "", again.output
    assert len(csv_rows(out)) == 3


def test_command_usage_errors_exit_2(untrained_model: Path, tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["watch", str(untrained_model), str(tmp_path / "none")])
    assert missing.exit_code == 2 and "none: no such folder to watch" in missing.output
    bad_model = tmp_path / "model.pt"
    bad_model.write_text("not a model")
    res = CliRunner().invoke(app, ["watch", str(bad_model), str(tmp_path), "--once"])
    assert res.exit_code == 2 and "error:" in res.output and "model.pt" in res.output
    both = CliRunner().invoke(app, ["watch", str(untrained_model), str(tmp_path), "--once",
                                    "--threshold", "0.3", "--threshold-from", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output


def test_recursive_keeps_sub_folders_and_skips_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for sub in ("line1", ".hidden", "done/line1"):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "a.jpg").write_bytes(jpeg_bytes(False))
    (folder / "a.jpg").write_bytes(jpeg_bytes(True))
    inspect, lines = Counting(), []
    run_watch(options(folder, folder / "out", recursive=True, move_to=folder / "done"),
              inspect, report=lines.append, note=lambda m: None)
    assert sorted(c[0] for c in inspect.calls) == ["a.jpg", "line1/a.jpg"]
    assert (folder / "done" / "line1" / "a-1.jpg").is_file()  # sub-folder kept, no overwrite
    assert (folder / "done" / "a.jpg").is_file() and (folder / ".hidden" / "a.jpg").is_file()
    record = json.loads((folder / "out" / "results" / "line1__a.jpg.json").read_text())
    assert record["file"] == "line1/a.jpg" and record["verdict"] == "pass"
