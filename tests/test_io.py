"""Atomic writes: a failure leaves the destination as it was; results get the usual mode."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scratchdet import io
from scratchdet.io import OutputExistsError, atomic_output, write_bytes_atomic

KILLED_WRITE = """
import os, signal, sys
from scratchdet.io import atomic_output
with atomic_output(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1_000_000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_result_has_umask_mode_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = write_bytes_atomic(tmp_path / "a.json", b"{}")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"keep"


def test_each_write_has_its_own_temp_file_removed_on_any_exception(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    with atomic_output(target) as first, atomic_output(target) as second:
        assert first != second and first.name.startswith(".a.json.")
        assert first.parent == second.parent == tmp_path
        first.write_bytes(b"1")
        second.write_bytes(b"2")
    assert target.read_bytes() == b"1"  # the last rename wins; no temp is shared
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_killed_write_leftover_is_removed_by_a_later_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "results.bbox.json"
    run = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target)], check=False)
    assert run.returncode == -9  # SIGKILL: no exception handler ran
    (leftover,) = tmp_path.glob(".results.bbox.json.*.part")
    assert leftover.stat().st_size == 1_000_000 and not target.exists()
    live = tmp_path / ".results.bbox.json.abcd1234.part"  # another writer, right now
    live.write_bytes(b"live")
    download = tmp_path / ".photo.JPG.part"  # data fetch's resumable partial download
    download.write_bytes(b"keep")
    hours_ago = time.time() - 2 * io.STALE_PART_S
    for path in (leftover, download):
        os.utime(path, (hours_ago, hours_ago))
    monkeypatch.setattr(io, "_swept", set())  # as in a fresh process
    write_bytes_atomic(target, b"[]", force=True)
    assert target.read_bytes() == b"[]"
    assert not leftover.exists() and live.exists() and download.exists()
    os.utime(live, (hours_ago, hours_ago))
    assert io.remove_stale_parts(tmp_path) == [live]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".photo.JPG.part", target.name]
