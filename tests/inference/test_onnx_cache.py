"""``--runtime auto`` on the CPU: a model.pt runs on ONNX Runtime through an export cached
beside it, made once, made again when the model file changes, never over a user's file."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from scratchdet.inference import export
from scratchdet.inference.load import cached_onnx, load_model, resolve_runtime

pytest.importorskip("onnxruntime")


@pytest.fixture
def model_pt(untrained_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy2(untrained_model, tmp_path / "model.pt"))


def test_auto_picks_onnx_on_the_cpu_and_torch_on_a_gpu(tmp_path: Path) -> None:
    pt = tmp_path / "model.pt"
    assert resolve_runtime(pt, "auto") == "onnx"
    assert resolve_runtime(pt, "auto", "cuda") == "torch"
    assert resolve_runtime(tmp_path / "m.onnx", "auto", "cuda") == "onnx"
    assert cached_onnx(pt) == tmp_path / "model.pt.onnx"


def test_export_is_cached_and_redone_when_the_model_changes(model_pt: Path) -> None:
    first = load_model(model_pt, threads=1)
    assert first.runtime == "onnx" and first.note is not None and "exported" in first.note
    cache = cached_onnx(model_pt)
    assert cache.is_file()
    made = cache.stat().st_mtime_ns
    again = load_model(model_pt, threads=1)
    assert again.runtime == "onnx" and again.note is None
    assert cache.stat().st_mtime_ns == made
    later = time.time_ns() + 10**9
    os.utime(model_pt, ns=(later, later))
    redone = load_model(model_pt, threads=1)
    assert redone.note is not None and cache.stat().st_mtime_ns != made


def test_a_users_own_file_is_never_overwritten(model_pt: Path) -> None:
    mine = cached_onnx(model_pt)
    mine.write_bytes(b"my own notes")
    loaded = load_model(model_pt, threads=1)
    assert loaded.runtime == "onnx" and mine.read_bytes() == b"my own notes"


def test_a_failed_export_falls_back_to_torch_with_a_note(
    model_pt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no exporter today")

    monkeypatch.setattr(export, "export_checkpoint", broken)
    loaded = load_model(model_pt, threads=1)
    assert loaded.runtime == "torch" and "ONNX export failed" in (loaded.note or "")
    with pytest.raises(RuntimeError, match="no exporter today"):
        load_model(model_pt, "onnx", threads=1)  # asked for by name: no fallback
