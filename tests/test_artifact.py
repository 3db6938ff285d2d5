"""The model artifact: spec round trips, strictness, and files of the 26 Nov formats.

The fixtures under ``tests/fixtures`` were read off files written by the 26 Nov code (commit
6749cdf): the metadata of a ``model.pt`` (format ``scratchdet-model/1``, the whole
TrainConfig) and the ``scratchdet`` metadata of an ONNX export (``scratchdet-onnx/1``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from scratchdet.artifact import (
    ArtifactError,
    ModelSpec,
    checkpoint_entry,
    onnx_metadata,
    spec_from_config,
    spec_from_onnx_metadata,
)

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), {"fpn_channels": 16}, tile_size=512,
                 tile_overlap=128, threshold=0.2, threshold_source="eval x: recall 0.95",
                 recipe={"epochs": 32, "renamed_later": [1, 2]})


def test_spec_round_trips_through_json() -> None:
    data = json.loads(json.dumps(SPEC.to_dict()))
    assert data["version"] == 1 and data["class_names"] == ["scratch"]
    assert ModelSpec.from_dict(data) == SPEC
    text = onnx_metadata(SPEC, {"opset": 17})
    spec, graph = spec_from_onnx_metadata({"scratchdet": text}, "m.onnx")
    assert (spec, graph) == (SPEC, {"opset": 17})
    assert SPEC.with_threshold(0.7, "manual").threshold == 0.7 and SPEC.threshold == 0.2
    red = ModelSpec.from_dict({**SPEC.to_dict(), "red_polarity": True})
    assert red.red_polarity and not SPEC.red_polarity


def test_red_polarity_comes_from_the_training_config() -> None:
    from scratchdet.artifact import spec_from_config

    base = {"model": "lite0_fpn_fast", "input_mode": "tiles", "tile_size": 512,
            "tile_overlap": 128}
    assert not spec_from_config(base, ["scratch"], [1]).red_polarity  # older configs: off
    assert spec_from_config({**base, "red_polarity": True}, ["scratch"], [1]).red_polarity


def test_nested_rule_travels_in_the_spec() -> None:
    assert SPEC.nested == "keep" and SPEC.nested_rule == ("keep", 0.5, 0.5)  # today's default
    other = ModelSpec.from_dict({**SPEC.to_dict(), "nested": "SUPPRESS:0.6"})
    assert other.nested == "suppress:0.6" and other.nested_rule == ("suppress", 0.6, 0.5)
    text = onnx_metadata(other, {"opset": 17})  # the ONNX metadata JSON, both ways
    assert json.loads(text)["spec"]["nested"] == "suppress:0.6"
    assert spec_from_onnx_metadata({"scratchdet": text}, "m.onnx")[0] == other
    # a spec written before the field existed: the one-stage models' rule
    old = {k: v for k, v in SPEC.to_dict().items() if k != "nested"}
    assert ModelSpec.from_dict(old).nested == "decay:0.5:0.5"
    old_text = json.dumps({"format": "scratchdet-onnx/2", "spec": old, "graph": {}})
    assert spec_from_onnx_metadata({"scratchdet": old_text}, "m.onnx")[0].nested == \
        "decay:0.5:0.5"
    with pytest.raises(ArtifactError, match=r"m\.pt: model spec: nested: expected "
                                            r"MODE\[:IOS\[:DECAY\]\].*got 'squash'"):
        ModelSpec.from_dict({**SPEC.to_dict(), "nested": "squash"}, "m.pt")


def test_nested_rule_comes_from_the_training_config() -> None:
    base = {"model": "lite0_fpn_fast"}
    assert spec_from_config(base, ["scratch"], [1]).nested == "decay:0.5:0.5"  # older configs
    assert spec_from_config({**base, "nested": "keep"}, ["scratch"], [1]).nested == "keep"


def test_nested_rule_round_trips_through_model_pt(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from scratchdet.artifact import read_checkpoint, save_model

    state = {"w": torch.ones(2)}
    keep = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), nested="keep")
    path = save_model(tmp_path / "model.pt", state, keep)
    assert torch.load(path, weights_only=True)["spec"]["nested"] == "keep"
    assert read_checkpoint(path)[1].nested == "keep"
    # a model.pt of today's format written before the field existed: the default rule
    old = {k: v for k, v in keep.to_dict().items() if k != "nested"}
    torch.save({"format": "scratchdet-model/2", "state_dict": state, "spec": old},
               tmp_path / "old.pt")
    assert read_checkpoint(tmp_path / "old.pt")[1].nested_rule == ("decay", 0.5, 0.5)


def test_spec_is_strict_about_its_own_keys_only() -> None:
    data = SPEC.to_dict()
    with pytest.raises(ArtifactError, match=r"m\.pt: unknown model spec key\(s\) \['tile'\]"):
        ModelSpec.from_dict({**data, "tile": 3}, "m.pt")
    with pytest.raises(ArtifactError, match=r"m\.pt: model spec version 2; this scratchdet "
                                            r"reads version 1"):
        ModelSpec.from_dict({**data, "version": 2}, "m.pt")
    with pytest.raises(ArtifactError, match="input_mode must be one of"):
        ModelSpec.from_dict({**data, "input_mode": "crops"}, "m.pt")
    with pytest.raises(ValueError, match="tile_overlap < tile_size"):
        ModelSpec("p", ("a",), (1,), tile_size=64, tile_overlap=64)
    with pytest.raises(ValueError, match="one length"):
        ModelSpec("p", ("a", "b"), (1,))
    # the recipe is provenance: any content loads, nothing in it is checked
    odd = {**data, "recipe": {"no_such_training_key": {"x": None}}}
    assert ModelSpec.from_dict(odd).recipe == {"no_such_training_key": {"x": None}}


def test_26_nov_model_pt_metadata_gives_the_spec() -> None:
    legacy = json.loads((FIXTURES / "model_pt_2026-11-26_meta.json").read_text())
    assert legacy["format"] == "scratchdet-model/1"
    spec = spec_from_config(legacy["config"], legacy["class_names"], legacy["category_ids"])
    assert (spec.preset, spec.input_mode, spec.tile_size, spec.tile_overlap) == (
        "lite0_fpn_fast", "tiles", 512, 128)
    assert spec.class_names == ("scratch",) and spec.category_ids == (1,)
    assert (spec.threshold, spec.threshold_source) == (0.5, "default")
    assert spec.recipe["epochs"] == 2 and spec.recipe["tile_options"]["samples_per_epoch"] == 128
    assert spec.nested == "decay:0.5:0.5"  # made before the rule travelled: the legacy rule
    # keys a legacy config left out take the 26 Nov TrainConfig defaults
    short = spec_from_config({"model": "lite0_fpn_fast"}, ["scratch"], [1])
    assert (short.input_mode, short.resize, short.tile_size) == ("resize", (1333, 800), 1024)


def test_26_nov_onnx_metadata_gives_the_spec() -> None:
    text = (FIXTURES / "onnx_2026-11-26_metadata.json").read_text().strip()
    spec, graph = spec_from_onnx_metadata({"scratchdet": text}, "old.onnx")
    assert (spec.preset, spec.tile_size, spec.tile_overlap) == ("lite0_fpn_fast", 512, 128)
    assert graph["image_mean"] == [0.5, 0.5, 0.5] and graph["opset"] == 17
    assert spec.recipe == {"checkpoint": "/tmp/base/before/cv/fold0/runs/model/model.pt"}
    assert spec.nested == "decay:0.5:0.5"
    with pytest.raises(ArtifactError, match=r"old\.onnx: no 'scratchdet' metadata"):
        spec_from_onnx_metadata({}, "old.onnx")
    with pytest.raises(ArtifactError, match=r"old\.onnx: 'scratchdet' metadata format 'x/9'"):
        spec_from_onnx_metadata({"scratchdet": '{"format": "x/9"}'}, "old.onnx")


def test_26_nov_model_files_load_and_run(tmp_path: Path) -> None:
    """A model.pt and a Lightning-style .ckpt in the 26 Nov layouts load with today's code."""
    torch = pytest.importorskip("torch")
    from scratchdet.artifact import read_checkpoint, save_model
    from scratchdet.inference.torch_runtime import build_detector, load_torch_model

    legacy = json.loads((FIXTURES / "model_pt_2026-11-26_meta.json").read_text())
    legacy["config"]["model_overrides"] = {"pretrained": False, "fpn_channels": 16}
    torch.manual_seed(0)
    state = build_detector(spec_from_config(legacy["config"], ["scratch"], [1])).state_dict()
    old_pt = tmp_path / "model.pt"
    torch.save({**{k: legacy[k] for k in ("format", "config", "class_names", "category_ids")},
                "state_dict": state}, old_pt)
    old_ckpt = tmp_path / "epoch001.ckpt"
    entry = {k: legacy[k] for k in ("config", "class_names", "category_ids")}
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 1,
                "global_step": 128, "scratchdet": entry}, old_ckpt)
    image = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(1))
    outs = []
    for path in (old_pt, old_ckpt):
        model, spec = load_torch_model(path)
        assert spec.preset == "lite0_fpn_fast" and spec.recipe["epochs"] == 2
        with torch.no_grad():
            outs.append(model([image])[0]["scores"])
    assert torch.equal(outs[0], outs[1])
    assert read_checkpoint(old_ckpt)[2] == {"epoch": 1, "global_step": 128}
    # re-saved in today's format, the same spec and weights come back
    new = save_model(tmp_path / "new.pt", state, spec)
    assert torch.load(new, weights_only=True)["format"] == "scratchdet-model/2"
    assert read_checkpoint(new)[1] == spec
    new_ckpt = tmp_path / "new.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()},
                "scratchdet": checkpoint_entry(spec)}, new_ckpt)
    assert read_checkpoint(new_ckpt)[1] == spec


def test_bad_model_files_are_named(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from scratchdet.artifact import read_checkpoint

    with pytest.raises(ArtifactError, match=r"none\.pt: model file not found"):
        read_checkpoint(tmp_path / "none.pt")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ArtifactError, match=r"notes\.pt: not a readable torch checkpoint"):
        read_checkpoint(text)
    bare = tmp_path / "bare.pt"
    torch.save({"state_dict": {}}, bare)
    with pytest.raises(ArtifactError, match=r"bare\.pt: no 'scratchdet' entry"):
        read_checkpoint(bare)
    broken = tmp_path / "broken.pt"
    torch.save({"state_dict": {}, "format": "scratchdet-model/1", "config": {}}, broken)
    with pytest.raises(ArtifactError, match=r"broken\.pt: stored config/class names do not fit"):
        read_checkpoint(broken)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"m\.onnx: an ONNX file holds a graph"):
        read_checkpoint(onnx)


def test_model_id_names_the_file_and_its_hash_in_at_most_213_chars(tmp_path: Path) -> None:
    from scratchdet.artifact import MAX_ID_NAME, model_id

    short = tmp_path / "model.onnx"
    short.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()[:12]
    assert model_id(short) == f"model.onnx@{digest}"
    long = tmp_path / ("m" * 240 + ".onnx")
    long.write_bytes(b"weights")
    got = model_id(long)
    assert got.startswith("m" * (MAX_ID_NAME - 3) + "...@") and len(got) == MAX_ID_NAME + 13
    assert got.endswith(f"@{digest}")  # same bytes, same hash
