"""Atomic writes: a failure leaves the destination as it was; results get the usual mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scratchdet.io import OutputExistsError, atomic_output, write_bytes_atomic


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
