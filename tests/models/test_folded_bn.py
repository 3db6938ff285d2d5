"""Batch norms folded into their convolutions give the unfolded layers' outputs and gradients."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
from torch import nn

from scratchdet.models.backbones import Lite0Backbone, static_same_padding
from scratchdet.models.folded_bn import conv_bn, run_block, run_stage


def _randomise_batch_norms(module: nn.Module, seed: int = 0) -> None:
    """Statistics and affine terms far from the identity, so a wrong fold shows."""
    gen = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=gen))
            bn.running_var.copy_(torch.rand(n, generator=gen) * 3 + 0.2)
            bn.weight.data.copy_(torch.randn(n, generator=gen))
            bn.bias.data.copy_(torch.randn(n, generator=gen))


def _reference_features(body: Lite0Backbone, x: torch.Tensor) -> list[torch.Tensor]:
    """The stage outputs as timm's own modules compute them (batch norm after convolution)."""
    x = body.bn1(body.conv_stem(x.contiguous(memory_format=torch.channels_last)))
    out = []
    for stage, block in enumerate(body.blocks):
        x = block(x)
        if stage in (2, 4, 6):
            out.append(x)
    return out


def _outputs_and_grads(body: Lite0Backbone, run) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    body.zero_grad()
    outs = run()
    sum(o.square().mean() for o in outs).backward()
    grads = [p.grad.clone() for p in body.parameters() if p.requires_grad]
    return [o.detach() for o in outs], grads


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@pytest.fixture(scope="module")
def frozen_body() -> Lite0Backbone:
    torch.manual_seed(0)
    body = Lite0Backbone(pretrained=False, bn_stats="frozen").train()
    with torch.no_grad():
        _randomise_batch_norms(body)
    return body


def test_folded_backbone_matches_timm_layers(frozen_body: Lite0Backbone) -> None:
    x = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    folded, folded_grads = _outputs_and_grads(frozen_body, lambda: list(frozen_body(x).values()))
    ref, ref_grads = _outputs_and_grads(frozen_body, lambda: _reference_features(frozen_body, x))
    assert [o.shape for o in folded] == [o.shape for o in ref]
    assert max(_rel(a, b) for a, b in zip(folded, ref, strict=True)) < 1e-5
    # every trainable convolution weight gets the gradient the two layers give it
    assert len(folded_grads) == len(ref_grads) > 30
    assert max(_rel(a, b) for a, b in zip(folded_grads, ref_grads, strict=True)) < 1e-4


def test_fold_follows_the_static_same_padding_of_the_export(frozen_body: Lite0Backbone) -> None:
    fixed = copy.deepcopy(frozen_body)
    assert static_same_padding(fixed) > 0  # Conv2dSame -> EvenSamePadConv2d
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = list(fixed.train()(x).values())  # training: the folded path
        want = _reference_features(frozen_body, x)
    assert max(_rel(a, b) for a, b in zip(got, want, strict=True)) < 1e-5


def test_eval_mode_runs_the_layers_themselves(frozen_body: Lite0Backbone) -> None:
    """Hooks on the convolutions (the batched predictor masks inputs with them) still run."""
    body = copy.deepcopy(frozen_body).eval()
    calls: list[str] = []
    body.blocks[3][0].conv_dw.register_forward_pre_hook(lambda m, i: calls.append("dw"))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        got = list(body(x).values())
        assert calls == ["dw"]
        body.train()(x)  # folded: the hook is skipped
        assert calls == ["dw"]
        want = _reference_features(body, x)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_batch_norm_in_training_mode_is_not_folded() -> None:
    conv, bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4).train()
    x = torch.rand(2, 3, 8, 8)
    out = conv_bn(conv, bn, x)
    assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(4), atol=1e-5)  # batch statistics
    assert int(bn.num_batches_tracked) == 1


def test_blocks_with_parts_the_fold_lacks_run_unfolded() -> None:
    net = timm.create_model("efficientnet_b0", pretrained=False).eval()  # squeeze-excitation
    block = net.blocks[1][0]
    assert not isinstance(block.se, nn.Identity)
    x = torch.rand(1, 16, 32, 32)
    with torch.no_grad():
        assert torch.equal(run_block(block, x), block(x))
        assert torch.equal(run_stage(net.blocks[1], x), net.blocks[1](x))
