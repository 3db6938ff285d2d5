"""Batch-norm statistics re-estimated on the training data (AdaBN: Li et al., 2016).

The Lite backbones come with ImageNet statistics; photos of painted parts are brighter and
flatter than ImageNet's, so the first layers' statistics move far (a stem ``running_mean``
moved by up to 4.7 in one epoch with batch statistics). ``bn_stats="domain"`` keeps the
statistics frozen in training, as ``"frozen"`` does, but first replaces the ImageNet ones by
the averages over some training batches: this function.

torch's ``swa_utils.update_bn`` does the same averaging but puts the model in training mode
through ``train()``, which a backbone with frozen statistics overrides to keep its batch norms
in eval mode; here the batch norms are switched one by one and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def calibrate_batch_norms(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Replace the running statistics of every ``nn.BatchNorm2d`` in ``model`` by their
    averages over ``batches`` (equal weight per batch), without gradients.

    Each batch is one call ``model(batch)``. Each batch norm's momentum
    and training flag are restored afterwards; nothing else changes (affine terms, other
    layers' modes). Returns the number of batches seen.

    Raises:
        ValueError: ``batches`` was empty (the statistics are left as they were).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.momentum, m.training, m.running_mean.clone(), m.running_var.clone(),
              m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
                seen += 1
    finally:
        for m, (momentum, training, mean, var, count) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.train(training)
            if seen == 0:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
    if seen == 0:
        raise ValueError("calibrate_batch_norms: no batches to estimate the statistics on")
    return seen
