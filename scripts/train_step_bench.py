"""Training step time of a recipe, two ways side by side: the RoI poolers, or override values.

    python scripts/train_step_bench.py [CONFIG] [--steps 10] [--rounds 4] [--set KEY=VALUE ...]
    python scripts/train_step_bench.py [CONFIG] --compare model_overrides.bn_stats=batch,frozen

The same training batches of CONFIG (default ``cpu_fast.yaml``; data from
``$SCRATCHDET_SAMPLE`` as in training) go through rounds of ``--steps`` optimiser steps that
alternate between the variants, so all see the same machine load. Without ``--compare``: one
model whose RoI pooler class is swapped in place (the fast RoIAlign backward against
torchvision's; same weights, same settings). With ``--compare KEY=V1,V2,...``: one model per
value (``--set KEY=V`` each, built from the same seed), each with its own optimiser. Models
are in the mode a Lightning fit trains them in (built, ``train()`` never called). Prints each
round's seconds per step and the ratio of the medians to the first variant. Data loading is
not timed (the batches are drawn first).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torchvision.ops import MultiScaleRoIAlign

from scratchdet.config import load_config
from scratchdet.models.roi_align import FastMultiScaleRoIAlign
from scratchdet.training.config import TrainConfig
from scratchdet.training.datamodule import DetectionDataModule
from scratchdet.training.detector import build_detector

POOLERS = {"fast backward": FastMultiScaleRoIAlign, "torchvision": MultiScaleRoIAlign}


def _stepper(cfg: TrainConfig, num_classes: int) -> tuple[torch.nn.Module, Callable]:
    """A freshly built model of ``cfg`` (seed 0) and its one-batch training step."""
    torch.manual_seed(0)
    model = build_detector(cfg.model, num_classes, cfg.model_overrides)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(params, lr=cfg.lr * 0.1, momentum=cfg.momentum)

    def step(batch: tuple) -> None:
        images, targets, _ = batch
        loss = sum(model(images, targets).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return model, step


def _variants(args: argparse.Namespace, cfg: TrainConfig, num_classes: int) -> dict[str, Callable]:
    """Name -> a callable that prepares its variant and returns the step to time."""
    if args.compare:
        key, _, values = args.compare.partition("=")
        steps = {}
        for value in values.split(","):
            vcfg = load_config(TrainConfig, args.config,
                               ["num_workers=0", *args.overrides, f"{key}={value}"])
            steps[f"{key.rpartition('.')[2]}={value}"] = _stepper(vcfg, num_classes)[1]
        return {name: (lambda s=s: s) for name, s in steps.items()}
    model, step = _stepper(cfg, num_classes)
    pool = model.roi_heads.box_roi_pool

    def with_pooler(cls: type) -> Callable:
        pool.__class__ = cls
        return step

    return {name: (lambda c=cls: with_pooler(c)) for name, cls in POOLERS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="cpu_fast.yaml")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--compare", default=None,
                        help="KEY=V1,V2,...: one model per value instead of the two poolers")
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = load_config(TrainConfig, args.config, ["num_workers=0", *args.overrides])
    data = DetectionDataModule(cfg)
    loader = data.train_dataloader()
    batches = [b for b, _ in zip(loader, range(args.steps + 2), strict=False)]
    variants = _variants(args, cfg, len(data.class_names))
    for prepare in variants.values():  # warm-up
        step = prepare()
        for batch in batches[:2]:
            step(batch)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, prepare in variants.items():
            step = prepare()
            start = time.perf_counter()
            for batch in batches[2:]:
                step(batch)
            times[name].append((time.perf_counter() - start) / args.steps)
    print(f"{cfg.model}, batch {cfg.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds of {args.steps} steps, interleaved")
    for name, values in times.items():
        rounds = " ".join(f"{v:.3f}" for v in values)
        print(f"  {name:22s} s/step: {rounds}  (median {statistics.median(values):.3f})")
    first, *rest = times
    for name in rest:
        ratio = statistics.median(times[name]) / statistics.median(times[first])
        print(f"  {name} / {first}: {ratio:.2f}x the time")


if __name__ == "__main__":
    main()
