"""Batched-path variants on a GPU (scripts/gpu/check.sh): batch size, precision, cuDNN
autotuning, padding multiple, channels-last; photos/s, phases and parity with the single
path (float32), one line each as soon as measured, within about 200 s."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from scratchdet.inference import gpu_benchmark as gb
from scratchdet.inference.gpu_batch import BatchedPredictor
from scratchdet.inference.load import build_predictor, load_model
from scratchdet.inference.torch_runtime import load_torch_model

# Measured 27 Nov (H200, docs/speed.md): buckets of 512 + autotune, batch 4, TF32: 55.7 photos/s
# after 46 s of tuning; first-come batching with autotune 4.8. Next to measure, in this order:
VARIANTS: list[dict[str, Any]] = [
    {"batch": 4, "amp": "bf16", "channels_last": True, "autotune": True, "buckets": True,
     "snap": 512},
    {"batch": 4, "amp": "tf32", "buckets": True, "snap": 512},
    {"batch": 4, "amp": "tf32", "channels_last": True, "autotune": True, "buckets": True,
     "snap": 512},
    {"batch": 2, "amp": "tf32", "autotune": True, "buckets": True, "snap": 512},
    {"batch": 4, "amp": "tf32", "autotune": True, "buckets": True, "snap": 1024},
]


def main() -> None:
    model, photos = Path(".gpu/model.pt"), sorted(Path(".gpu/photos").glob("*.JPG"))
    start = time.time()
    gb.tf32(False)
    single = build_predictor(load_model(model, "torch", "cuda"), score_threshold=0.05)
    ref_run, ref = gb.time_single(single, photos, 1, torch.device("cuda"))
    print("single float32", round(ref_run.photos_per_s, 1), "photos/s", flush=True)
    for variant in VARIANTS:
        if time.time() - start > 200:
            print("stopping: time")
            break
        kw = dict(variant)
        batch, amp = kw.pop("batch"), kw.pop("amp")
        torch.backends.cudnn.benchmark = kw.pop("autotune", False)
        gb.tf32(amp == "tf32")
        try:
            bp = BatchedPredictor(single, load_torch_model(model)[0], "cuda", batch,
                                  amp=None if amp == "tf32" else amp, **{"locators": 8, **kw})
            began = time.time()
            run, found = gb.time_batched(bp, photos, 8, str(variant))
            took = time.time() - began  # warm-up pass (cuDNN's tuning) + the timed passes
            bp.close()
            phases = {k: round(v * 1e3, 1) for k, v in run.phases.items()}
            print(variant, round(run.photos_per_s, 1), "photos/s", phases,
                  f"warm-up {took - run.photos / run.photos_per_s:.1f} s",
                  gb.parity(found, ref), flush=True)
        except Exception as err:  # one failed variant says why; the rest run
            print(variant, "failed:", type(err).__name__, err, flush=True)
    print("max memory GiB", round(torch.cuda.max_memory_allocated() / 2**30, 2))


if __name__ == "__main__":
    main()
