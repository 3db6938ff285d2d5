"""Batch-norm statistics re-estimated on given batches (bn_stats: domain)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scratchdet.models.backbones import Lite0Backbone
from scratchdet.models.bn_calibration import calibrate_batch_norms


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.3), nn.ReLU(),
                         nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2)).eval()


def test_the_statistics_are_the_averages_over_the_batches() -> None:
    net = _net()
    batches = [torch.randn(2, 3, 9, 9) * 3 + 5, torch.randn(2, 3, 9, 9) - 1]
    assert calibrate_batch_norms(net, batches) == 2
    conv_out = [net[0](b) for b in batches]
    means = torch.stack([o.mean(dim=(0, 2, 3)) for o in conv_out])
    variances = torch.stack([o.var(dim=(0, 2, 3), unbiased=True) for o in conv_out])
    torch.testing.assert_close(net[1].running_mean, means.mean(0))
    torch.testing.assert_close(net[1].running_var, variances.mean(0))
    # The modes and momenta are as before; the second norm saw the calibrated first one.
    assert not net[1].training and net[1].momentum == 0.3 and net[4].momentum == 0.1
    assert int(net[1].num_batches_tracked) == 2
    with torch.no_grad():
        out = net[:4](batches[0])
    assert not torch.allclose(net[4].running_mean, torch.zeros(2))
    assert torch.isfinite(out).all()


def test_no_batches_is_refused_and_leaves_the_statistics() -> None:
    net = _net()
    net[1].running_mean.fill_(7.0)
    with pytest.raises(ValueError, match="no batches"):
        calibrate_batch_norms(net, [])
    assert torch.equal(net[1].running_mean, torch.full((4,), 7.0))
    assert net[1].momentum == 0.3


def test_a_backbone_with_frozen_statistics_is_calibrated_and_stays_frozen() -> None:
    """The backbone's train() keeps its batch norms in eval mode: the calibration switches
    them itself, and afterwards a training pass leaves the new statistics alone."""
    body = Lite0Backbone(pretrained=False, bn_stats="domain")
    stem = body.bn1
    before = stem.running_mean.clone()
    images = [torch.rand(2, 3, 64, 64) * 0.2 + 0.8 for _ in range(3)]  # bright, flat paint
    calibrate_batch_norms(body, images)
    calibrated = stem.running_mean.clone()
    assert not torch.allclose(calibrated, before) and not stem.training
    body.train()
    body(torch.rand(2, 3, 64, 64))
    assert torch.equal(stem.running_mean, calibrated)
