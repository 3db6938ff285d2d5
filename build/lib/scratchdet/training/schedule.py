"""Learning-rate schedule of the seed, per iteration: linear warm-up, then cosine annealing.

As mmdet 2.x ``lr_config = dict(policy='CosineAnnealing', by_epoch=False, min_lr=...,
warmup='linear', warmup_iters=..., warmup_ratio=...)``: the cosine curve runs from ``base``
at step 0 to ``min_lr`` at ``total``; during warm-up it is scaled by a factor rising linearly
from ``warmup_ratio`` to 1.
"""

from __future__ import annotations

import math


def lr_at(
    step: int, total: int, base: float, min_lr: float, warmup_iters: int, warmup_ratio: float
) -> float:
    """The learning rate at iteration ``step`` (0-based) of ``total``."""
    progress = min(step, total) / max(total, 1)
    lr = min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    if step < warmup_iters:
        lr *= 1 - (1 - step / warmup_iters) * (1 - warmup_ratio)
    return lr
