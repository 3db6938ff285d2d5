"""Weights from local files: strict loading, clear errors, MMDetection 2.x mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor
from torchvision.models.resnet import Bottleneck, ResNet

from scratchdet.models.checkpoints import (
    CheckpointMismatchError,
    load_pretrained,
    mmdet_to_torchvision,
    torchvision_to_mmdet,
)
from scratchdet.models.factory import build_model


def _mmdet_cascade_state(num_classes: int = 1) -> dict[str, Tensor]:
    """Random tensors with MMDetection 2.x Cascade R-CNN X101-32x4d-FPN names and shapes."""
    generator = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator)

    body = ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4)  # BN with counters
    state = {f"backbone.{k}": rand(*v.shape) if v.is_floating_point() else v
             for k, v in body.state_dict().items() if not k.startswith("fc.")}
    for i, channels in enumerate((256, 512, 1024, 2048)):
        state[f"neck.lateral_convs.{i}.conv.weight"] = rand(256, channels, 1, 1)
        state[f"neck.lateral_convs.{i}.conv.bias"] = rand(256)
        state[f"neck.fpn_convs.{i}.conv.weight"] = rand(256, 256, 3, 3)
        state[f"neck.fpn_convs.{i}.conv.bias"] = rand(256)
    for name, out, kernel in (("rpn_conv", 256, 3), ("rpn_cls", 3, 1), ("rpn_reg", 12, 1)):
        state[f"rpn_head.{name}.weight"] = rand(out, 256, kernel, kernel)
        state[f"rpn_head.{name}.bias"] = rand(out)
    for s in range(3):
        head = f"roi_head.bbox_head.{s}"
        for name, out, inp in (("shared_fcs.0", 1024, 256 * 49), ("shared_fcs.1", 1024, 1024),
                               ("fc_cls", num_classes + 1, 1024), ("fc_reg", 4, 1024)):
            state[f"{head}.{name}.weight"] = rand(out, inp)
            state[f"{head}.{name}.bias"] = rand(out)
    return state


@pytest.fixture(scope="module")
def cascade() -> torch.nn.Module:
    return build_model("cascade_rcnn_x101_32x4d_fpn")


def test_mmdet_cascade_checkpoint_round_trip(cascade: torch.nn.Module, tmp_path: Path) -> None:
    mmdet = _mmdet_cascade_state()
    path = tmp_path / "epoch_16.pth"
    torch.save({"state_dict": mmdet, "meta": {"epoch": 16, "CLASSES": ("scratch",)}}, path)
    load_pretrained(cascade, path)
    ours = cascade.state_dict()
    # Background is the LAST row of mmdet's fc_cls and the FIRST of ours.
    fc_cls = mmdet["roi_head.bbox_head.2.fc_cls.weight"]
    assert torch.equal(ours["roi_heads.box_predictors.2.cls_score.weight"][0], fc_cls[1])
    assert torch.equal(ours["roi_heads.box_predictors.2.cls_score.weight"][1], fc_cls[0])
    assert torch.equal(ours["rpn.head.conv.0.0.weight"], mmdet["rpn_head.rpn_conv.weight"])
    assert torch.equal(ours["backbone.fpn.inner_blocks.3.0.weight"],
                       mmdet["neck.lateral_convs.3.conv.weight"])
    back = torchvision_to_mmdet(ours)
    expected = {k: v for k, v in mmdet.items() if not k.endswith("num_batches_tracked")}
    assert set(back) == set(expected)
    assert all(torch.equal(back[k], expected[k]) for k in expected)


def test_mmdet_unknown_key_is_named() -> None:
    with pytest.raises(KeyError, match=r"roi_head\.mask_head\.0\.conv"):
        mmdet_to_torchvision({"roi_head.mask_head.0.conv.weight": torch.zeros(1)})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        build_model("lite0_fpn_fast", pretrained=tmp_path / "nope.pth")


def test_mismatched_weights_name_keys_and_shapes(tmp_path: Path) -> None:
    model = build_model("lite0_fpn_fast", pretrained=False)
    state = model.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(5, 256)
    del state["rpn.head.cls_logits.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_pretrained(model, path)
    message = str(info.value)
    assert "bad.pth" in message and "rpn.head.cls_logits.bias" in message
    assert "extra.weight" in message and "(5, 256)" in message and "(2, 256)" in message


def test_own_and_lightning_state_dicts_load(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = build_model("lite0_fpn_fast", pretrained=False)
    plain, lightning = tmp_path / "plain.pth", tmp_path / "lightning.ckpt"
    torch.save(source.state_dict(), plain)
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}},
               lightning)
    for path in (plain, lightning):
        model = build_model("lite0_fpn_fast", pretrained=path)
        key = "roi_heads.box_head.fc6.weight"
        assert torch.equal(model.state_dict()[key], source.state_dict()[key])


def test_torchvision_classification_backbone_loads_into_body(tmp_path: Path) -> None:
    classifier = ResNet(Bottleneck, [3, 4, 6, 3])
    path = tmp_path / "resnet50.pth"
    torch.save(classifier.state_dict(), path)
    model = build_model("faster_rcnn_r50_fpn", pretrained=path)
    body = model.backbone.body
    assert torch.equal(body.layer4[2].conv3.weight, classifier.layer4[2].conv3.weight)
    torch.save({k: v for k, v in classifier.state_dict().items() if "layer4" not in k}, path)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys .*layer4"):
        build_model("faster_rcnn_r50_fpn", pretrained=path)
