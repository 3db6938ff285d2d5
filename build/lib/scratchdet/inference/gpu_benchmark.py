"""Throughput on a GPU: batched prediction beside the single-photo path and the seed model.

:func:`run_gpu_benchmark` times, in one process on one device, over the same photos (each
read from disk and decoded every time):

- ``batched <amp>``: :class:`~scratchdet.inference.gpu_batch.BatchedPredictor` (decode on the
  device, localisation, inputs of several photos per model call), once per ``amp`` setting;
- ``single``: the single-photo predictor with PyTorch on the device (host decode);
- ``seed``: the seed Cascade R-CNN X101 (random weights: speed does not depend on them) on
  the whole photo resized to 1333x800 inside the model, the photos decoded in batches on the
  device and run ``batch`` at a time.

Each run reports photos/s (wall clock over ``repeat`` passes after one warm-up pass) and the
mean per-phase seconds per photo. Parity of each batched run with the single path (float32)
counts the single path's boxes >= 0.05 found again at IoU >= 0.9 with scores within 1e-3 and
0.05, and the largest change of a photo's best score (the verdict's input).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.ops import box_iou

from scratchdet.inference.gpu_batch import BatchedPredictor
from scratchdet.inference.load import build_predictor, load_model
from scratchdet.inference.torch_runtime import load_torch_model
from scratchdet.models.factory import build_model
from scratchdet.structures import Detections

SEED_PRESET = "cascade_rcnn_x101_32x4d_fpn"
PHASES = ("decode", "localise", "model", "merge")


@dataclass(frozen=True)
class GpuRun:
    """One timed configuration."""

    name: str
    photos_per_s: float
    phases: dict[str, float]  # mean seconds per photo of each phase (stages overlap)
    photos: int
    parity: dict[str, float] | None = None
    warmup_s: float | None = None  # the untimed first pass (with --autotune: cuDNN's tuning)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _phases(timings: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.fmean(t.get(k, 0.0) for t in timings) for k in PHASES}


def time_batched(batched: BatchedPredictor, photos: Sequence[Path], repeat: int,
                 name: str) -> tuple[GpuRun, dict[Path, Detections]]:
    """Photos/s of ``batched`` over ``repeat`` passes (after a warm-up pass, whose wall time
    is kept: with autotuning it holds the one-off tuning of each shape bucket)."""
    began = time.perf_counter()
    found = {p: r.detections for p, r in batched.predict_many(photos)
             if not isinstance(r, Exception)}
    _sync(batched.device)
    timings: list[dict[str, float]] = []
    start = time.perf_counter()
    warmup = start - began
    for _, result in batched.predict_many(list(photos) * repeat):
        if isinstance(result, Exception):
            raise result
        timings.append(result.timings)
    _sync(batched.device)
    wall = time.perf_counter() - start
    return GpuRun(name, len(timings) / wall, _phases(timings), len(timings),
                  warmup_s=warmup), found


def time_single(predictor: Any, photos: Sequence[Path], repeat: int,
                device: torch.device) -> tuple[GpuRun, dict[Path, Detections]]:
    """Photos/s of the single-photo predictor, photo after photo."""
    found = {p: predictor.predict(p).detections for p in photos}
    _sync(device)
    timings = []
    start = time.perf_counter()
    for _ in range(repeat):
        timings += [predictor.predict(p).timings for p in photos]
    _sync(device)
    wall = time.perf_counter() - start
    return GpuRun("single (torch, float32)", len(timings) / wall, _phases(timings),
                  len(timings)), found


@torch.inference_mode()
def time_seed(photos: Sequence[Path], device: torch.device, batch: int, repeat: int,
              size: tuple[int, int] = (1333, 800)) -> GpuRun:
    """The seed model at ``size`` (long x short side), photos decoded in batches on the device."""
    torch.manual_seed(0)
    model = build_model(SEED_PRESET, pretrained=False, min_size=size[1],
                        max_size=size[0]).eval().to(device)

    def one_pass(paths: Sequence[Path]) -> dict[str, float]:
        spent = {"decode": 0.0, "model": 0.0}
        for i in range(0, len(paths), batch):
            t = time.perf_counter()
            data = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8)
                    for p in paths[i : i + batch]]
            images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
            _sync(device)
            spent["decode"] += time.perf_counter() - t
            t = time.perf_counter()
            outputs = model([x.float().div_(255) for x in images])
            outputs = [{k: v.cpu() for k, v in o.items()} for o in outputs]
            spent["model"] += time.perf_counter() - t
        return spent

    one_pass(list(photos))
    paths = list(photos) * repeat
    start = time.perf_counter()
    spent = one_pass(paths)
    wall = time.perf_counter() - start
    phases = {k: spent.get(k, 0.0) / len(paths) for k in PHASES}
    return GpuRun(f"seed cascade x101 @{size[0]}x{size[1]} (batch {batch}, float32/TF32)",
                  len(paths) / wall, phases, len(paths))


def parity(found: dict[Path, Detections], reference: dict[Path, Detections]) -> dict[str, float]:
    """How many of the reference's boxes >= 0.05 come back (IoU >= 0.9; score within 1e-3,
    within 0.05) and the largest change of a photo's best score."""
    total = close = near = 0
    worst = 0.0
    for path, ref in reference.items():
        got = found[path]
        keep = ref.scores >= 0.05
        boxes, scores = ref.boxes[keep], ref.scores[keep]
        total += len(boxes)
        best_ref = float(ref.scores.max()) if len(ref) else 0.0
        best_got = float(got.scores.max()) if len(got) else 0.0
        worst = max(worst, abs(best_ref - best_got))
        if not len(boxes) or not len(got):
            continue
        iou = box_iou(torch.as_tensor(boxes), torch.as_tensor(got.boxes)).numpy()
        for i, j in enumerate(iou.argmax(1)):
            if iou[i, j] >= 0.9:
                diff = abs(float(scores[i]) - float(got.scores[j]))
                close += diff < 1e-3
                near += diff < 0.05
    return {"boxes": total, "within_1e-3": close, "within_0.05": near,
            "max_best_score_change": worst}


def tf32(enabled: bool) -> None:
    """TensorFloat-32 in convolutions and matrix products on or off (PyTorch's default: on in
    cuDNN convolutions). Off, float32 runs are plain float32, which the parity needs."""
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


def run_gpu_benchmark(model: Path, photos: Sequence[Path], device: str = "cuda",
                      batch: int = 8, amps: Sequence[str | None] = (None, "tf32", "bf16"),
                      repeat: int = 4, seed: bool = True,
                      locators: int | None = None, autotune: bool = False) -> list[GpuRun]:
    """Every configuration of the module docstring, on ``device``; the single path (plain
    float32) first. ``amps``: ``None`` plain float32, ``"tf32"`` float32 with TensorFloat-32
    matrix units, ``"bf16"``/``"fp16"`` the backbone in that precision. ``locators``: worker
    processes finding part regions (``None``: half the cores, at most 8, on a GPU; 0 on CPU).
    ``autotune``: cuDNN times its algorithms for each new input shape, inputs batched by
    padded shape (:class:`~scratchdet.inference.buckets.ShapeBuckets`) so that shapes repeat;
    the timed passes come after one warm-up pass, which pays the tuning."""
    dev = torch.device(device)
    if locators is None:
        locators = min(8, (os.cpu_count() or 2) // 2) if dev.type == "cuda" else 0
    tf32(False)
    torch.backends.cudnn.benchmark = autotune
    single = build_predictor(load_model(model, "torch", device), score_threshold=0.05)
    reference_run, reference = time_single(single, photos, 1, dev)
    runs = [reference_run]
    for amp in amps:
        tf32(amp == "tf32")
        network, _ = load_torch_model(model)
        batched = BatchedPredictor(single, network, device, batch,
                                   amp=None if amp == "tf32" else amp, locators=locators,
                                   autotune=autotune)
        try:
            run, found = time_batched(batched, photos, repeat,
                                      f"batched {batch} ({amp or 'float32'})")
        finally:
            batched.close()
        runs.append(replace(run, parity=parity(found, reference)))
        del batched, network
    tf32(True)  # the seed as PyTorch runs it by default
    if seed:
        runs.append(time_seed(photos, dev, batch, max(1, repeat // 2)))
    return runs


def summary_lines(runs: Sequence[GpuRun], device: str) -> list[str]:
    """One line per run, the speed-up of the best batched run over the seed and the single
    path, and the parity of each batched run."""
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "cpu"
    lines = [f"device: {name}"]
    for run in runs:
        phases = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in run.phases.items())
        lines.append(f"  {run.name}: {run.photos_per_s:.1f} photos/s over {run.photos} photos "
                     f"({phases} ms/photo)"
                     + (f"; warm-up pass {run.warmup_s:.1f} s" if run.warmup_s is not None
                        else ""))
        if run.parity:
            p = run.parity
            lines.append(f"    parity with single: {p['within_1e-3']:.0f}/{p['boxes']:.0f} boxes"
                         f" within 1e-3, {p['within_0.05']:.0f} within 0.05; best score per "
                         f"photo changes by <= {p['max_best_score_change']:.4f}")
    batched = [r for r in runs if r.name.startswith("batched")]
    seed = [r for r in runs if r.name.startswith("seed")]
    if batched:
        best = max(batched, key=lambda r: r.photos_per_s)
        text = f"best: {best.name} {best.photos_per_s:.1f} photos/s"
        text += f" = {best.photos_per_s / runs[0].photos_per_s:.1f}x the single path"
        if seed:
            text += f", {best.photos_per_s / seed[0].photos_per_s:.1f}x the seed"
        lines.append(text)
    return lines


def to_dict(runs: Sequence[GpuRun], device: str, photos: Sequence[Path]) -> dict[str, Any]:
    """``benchmark.json`` of a GPU benchmark."""
    return {"device": device, "torch_version": torch.__version__,
            "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
            "photos": [str(p) for p in photos], "runs": [asdict(r) for r in runs],
            "summary": summary_lines(runs, device)}

