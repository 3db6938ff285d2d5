"""Two CPU processes (DDP over gloo) from the same config, through ``scratchdet train``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from .training_helpers import tiny_config, write_synthetic


def test_ddp_two_cpu_processes_train_and_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ann = write_synthetic(data, n=8)
    cfg = tiny_config(tmp_path, ann, accelerator="cpu", devices=2, strategy="ddp",
                      run_name="ddp", batch_size=2)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "scratchdet", "train", str(path)],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log
    run = tmp_path / "runs" / "ddp"
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["world_size"] == 2
    assert summary["global_step"] == 2  # 8 photos / (2 ranks x batch 2)
    assert (run / "checkpoints" / "epoch000.ckpt").is_file()
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "model.pt").is_file()
    assert f"run folder:      {run}" in proc.stdout
