"""Side-by-side eager CPU cost of the CPU-model candidates (one process, interleaved).

Run ``python -m scratchdet.models.profile [--size 1024] [--repeats 4] [--threads 1]``.
It reports the CPU time of this process (``time.process_time``), best of ``repeats``: on a
shared machine wall time mostly measures the other users, CPU time much less so. With one
thread CPU time ~ unloaded wall time. Compare ratios within one run.
Speed claims for the project come from ``scratchdet benchmark``; this is the models' own probe.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, fasterrcnn_mobilenet_v3_large_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from scratchdet.models import backbones
from scratchdet.models.detector import DetectionTransform
from scratchdet.models.factory import build_model


def _native(model: nn.Module, mean: float | None = None) -> nn.Module:
    """Swap in a no-resize transform so every candidate sees the same native-size tile."""
    old = model.transform
    image_mean = [mean] * 3 if mean is not None else old.image_mean
    image_std = [mean] * 3 if mean is not None else old.image_std
    model.transform = DetectionTransform(1024, 1024, image_mean, image_std, resize=False)
    return model


def _lite0_fpn128_torchvision_heads() -> nn.Module:
    """The earlier reference: Lite0 + 128-channel FPN + torchvision's default Faster R-CNN."""
    backbone = backbones.lite0_fpn(128, pretrained=False, frozen_blocks=0)
    anchors = AnchorGenerator(((32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 3)
    pool = MultiScaleRoIAlign(["0", "1", "2"], 7, 2)
    model = FasterRCNN(backbone, num_classes=2, rpn_anchor_generator=anchors, box_roi_pool=pool)
    return _native(model, 0.5)


CANDIDATES: dict[str, Callable[[], nn.Module]] = {
    "lite0_fpn_fast (64ch P3-P5, 300 RoIs)": lambda: build_model("lite0_fpn_fast",
                                                                 pretrained=False),
    "lite0_fpn_fast fpn_channels=96": lambda: build_model("lite0_fpn_fast", pretrained=False,
                                                          fpn_channels=96),
    "lite0_fcos (64ch P3-P5, 2 convs)": lambda: build_model("lite0_fcos", pretrained=False),
    "ref: lite0 + FPN128 + tv Faster R-CNN heads": _lite0_fpn128_torchvision_heads,
    "ref: mobilenet_v3_large_fpn (tv)": lambda: _native(
        fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=2)),
    "ref: mobilenet_v3_large_fpn, channels-last": lambda: _native(
        fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=2)
    ).to(memory_format=torch.channels_last),
}


def _eval_seconds(model: nn.Module, size: int) -> float:
    image = torch.rand(3, size, size)
    with torch.inference_mode():
        start = time.process_time()
        model([image])
        return time.process_time() - start


def _train_step_seconds(model: nn.Module, crop: int) -> float:
    images = [torch.rand(3, crop, crop) for _ in range(2)]
    box = torch.tensor([[40.0, 50.0, 140.0, 90.0], [200.0, 200.0, 260.0, 330.0]])
    targets = [{"boxes": box, "labels": torch.ones(2, dtype=torch.int64)} for _ in images]
    start = time.process_time()
    losses = model(images, targets)
    sum(losses.values()).backward()
    return time.process_time() - start


def profile(
    size: int = 1024, repeats: int = 3, crop: int = 512
) -> dict[str, tuple[float, float, float]]:
    """Best CPU seconds per ``size`` tile, per train step (2 crops) and millions of params.

    Candidates are timed round-robin after one warm-up each, so load changes hit all alike.
    """
    models = {name: make().eval() for name, make in CANDIDATES.items()}
    evals: dict[str, list[float]] = {name: [] for name in models}
    steps: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        _eval_seconds(model, size)
    for _ in range(repeats):
        for name, model in models.items():
            evals[name].append(_eval_seconds(model.eval(), size))
            steps[name].append(_train_step_seconds(model.train(), crop))
            model.zero_grad(set_to_none=True)
    return {
        name: (min(evals[name]), min(steps[name]),
               sum(p.numel() for p in model.parameters()) / 1e6)
        for name, model in models.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = profile(args.size, args.repeats, args.crop)
    base = results[next(iter(results))][0]
    print(f"eager CPU seconds (process time, {args.threads} thread(s), best of {args.repeats}): "
          f"eval on one {args.size}px tile, train step on two {args.crop}px crops")
    for name, (seconds, step, params) in results.items():
        print(f"{name:48s} eval {seconds:6.3f} s ({seconds / base:4.2f}x)  "
              f"train step {step:6.3f} s  params {params:5.2f}M")


if __name__ == "__main__":
    main()
