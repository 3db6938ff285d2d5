"""Training step time of a recipe with the fast RoIAlign backward against torchvision's.

    python scripts/train_step_bench.py [CONFIG] [--steps 10] [--rounds 4] [--set KEY=VALUE ...]

One model, one optimiser and the same training batches of CONFIG (default ``cpu_fast.yaml``;
data from ``$SCRATCHDET_SAMPLE`` as in training); rounds of ``--steps`` optimiser steps
alternate between the two RoI poolers (the pooler's class is swapped in place: same weights,
same settings), so both see the same machine load. Prints each round's seconds per step
and the ratio of the medians. Data loading is not timed (the batches are drawn first).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchvision.ops import MultiScaleRoIAlign

from scratchdet.config import load_config
from scratchdet.models.roi_align import FastMultiScaleRoIAlign
from scratchdet.training.config import TrainConfig
from scratchdet.training.datamodule import DetectionDataModule
from scratchdet.training.detector import build_detector

POOLERS = {"fast backward": FastMultiScaleRoIAlign, "torchvision": MultiScaleRoIAlign}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="cpu_fast.yaml")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = load_config(TrainConfig, args.config, ["num_workers=0", *args.overrides])
    data = DetectionDataModule(cfg)
    loader = data.train_dataloader()
    batches = [b for b, _ in zip(loader, range(args.steps + 2), strict=False)]
    model = build_detector(cfg.model, len(data.class_names), cfg.model_overrides).train()
    pool = model.roi_heads.box_roi_pool
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(params, lr=cfg.lr * 0.1, momentum=cfg.momentum)

    def step(batch: tuple) -> None:
        images, targets, _ = batch
        loss = sum(model(images, targets).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for batch in batches[:2]:  # warm-up
        step(batch)
    times: dict[str, list[float]] = {name: [] for name in POOLERS}
    for _ in range(args.rounds):
        for name, cls in POOLERS.items():
            pool.__class__ = cls
            start = time.perf_counter()
            for batch in batches[2:]:
                step(batch)
            times[name].append((time.perf_counter() - start) / args.steps)
    print(f"{cfg.model}, batch {cfg.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds of {args.steps} steps, interleaved")
    for name, values in times.items():
        rounds = " ".join(f"{v:.3f}" for v in values)
        print(f"  {name:14s} s/step: {rounds}  (median {statistics.median(values):.3f})")
    ratio = statistics.median(times["torchvision"]) / statistics.median(times["fast backward"])
    print(f"  torchvision / fast backward: {ratio:.2f}x")


if __name__ == "__main__":
    main()
