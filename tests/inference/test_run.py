"""``scratchdet predict`` and ``scratchdet.inference.run`` on real val photos, tiny model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from data.builders import png_claiming as _png_claiming
from scratchdet.cli import app
from scratchdet.data.photos import collect_photos
from scratchdet.inference import run
from scratchdet.inference.load import build_predictor, load_model

PHOTO = "red_DSC_0879.JPG"


def test_collect_photos_files_folders_globs(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.jpg", "c.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    got = collect_photos([tmp_path / "c.png", str(tmp_path), str(tmp_path / "*.jpg")])
    assert [p.name for p in got] == ["c.png", "a.jpg", "b.JPG"]
    assert [p.name for p in collect_photos(tmp_path)] == ["a.jpg", "b.JPG", "c.png"]
    with pytest.raises(FileNotFoundError, match=r"nothing\*\.jpg: no photos found"):
        collect_photos([str(tmp_path / "nothing*.jpg")])


def test_image_ids_from_gt_by_file_name(tmp_path: Path) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": [{"id": 7, "file_name": "sub/a.jpg"},
                                         {"id": 3, "file_name": "b.jpg"}]}))
    photos = [Path("x/b.jpg"), Path("y/a.jpg")]
    assert run.image_ids(photos, gt) == {"b.jpg": 3, "a.jpg": 7}
    assert run.image_ids(photos) == {"b.jpg": 1, "a.jpg": 2}
    with pytest.raises(ValueError, match=r"gt.json: 1 photo\(s\) not listed.*c.jpg"):
        run.image_ids([Path("c.jpg")], gt)
    gt.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"gt\.json: expected a COCO json with images"):
        run.image_ids(photos, gt)


def test_predict_writes_results_verdicts_overlays(
    sample: Path, untrained_model: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    out, ovl = tmp_path / "out", tmp_path / "ovl"
    res = CliRunner().invoke(app, [
        "predict", str(untrained_model), str(sample / "val" / PHOTO), str(bad), "--out", str(out),
        "--overlays", str(ovl), "--threshold", "0.3", "--scale", "0.25", "--threads", "2",
    ])
    assert res.exit_code == 1, res.output  # one photo failed; the other's results are kept
    assert "broken.jpg" in res.output and "1 photo(s) could not be read" in res.output
    assert "1/2 photos predicted (onnx" in res.output  # auto: ONNX Runtime on the CPU
    ids = json.loads((out / "image_ids.json").read_text())
    assert ids == {PHOTO: 1, "broken.jpg": 2}
    dets = json.loads((out / "results.bbox.json").read_text())
    assert dets, "an untrained model with score_thresh 0 still returns boxes"
    assert {d["image_id"] for d in dets} == {1} and {d["category_id"] for d in dets} == {1}
    for d in dets:
        x, y, w, h = d["bbox"]
        assert min(x, y, w, h) >= 0 and x + w <= 4608.5 and y + h <= 3072.5
    rows = list(csv.DictReader((out / "verdicts.csv").open()))
    assert len(rows) == 1 and set(rows[0]) == set(run.VERDICT_FIELDS)
    row = rows[0]
    top = max(d["score"] for d in dets)
    assert float(row["max_score"]) == pytest.approx(top, abs=1e-4)
    assert int(row["n_boxes"]) == sum(d["score"] >= 0.3 for d in dets)
    assert row["verdict"] == ("fail" if top >= 0.3 else "pass")
    assert float(row["total_ms"]) > float(row["model_ms"]) > 0 and int(row["tiles"]) >= 1
    overlay = Image.open(ovl / "red_DSC_0879.jpg")
    assert max(overlay.size) <= 1600 and overlay.size != (1600, 1067)  # the part, not the photo
    again = CliRunner().invoke(app, ["predict", str(untrained_model), str(bad), "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_predict_with_gt_ids_and_all_unreadable(
    sample: Path, untrained_model: Path, tmp_path: Path
) -> None:
    bad = tmp_path / PHOTO
    bad.write_bytes(b"\xff\xd8 truncated")
    gt = sample / "annotations" / "val.json"
    res = CliRunner().invoke(app, ["predict", str(untrained_model), str(bad), "--gt", str(gt),
                                   "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 1 and PHOTO in res.output
    want = next(im["id"] for im in json.loads(gt.read_text())["images"]
                if im["file_name"].endswith(PHOTO))
    assert json.loads((tmp_path / "o" / "image_ids.json").read_text()) == {PHOTO: want}


def test_predict_bad_inputs_exit_2(untrained_model: Path, tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["predict", str(tmp_path / "none.pt"), str(untrained_model)])
    assert missing.exit_code == 2 and "none.pt: model file not found" in missing.output
    empty = CliRunner().invoke(app, ["predict", str(untrained_model), str(tmp_path)])
    assert empty.exit_code == 2 and "no photos found" in empty.output
    runtime = CliRunner().invoke(app, ["predict", str(untrained_model), str(untrained_model),
                                       "--runtime", "tensorrt"])
    assert runtime.exit_code == 2 and "runtime must be one of auto, torch, onnx" in runtime.output
    flips = CliRunner().invoke(app, ["predict", str(untrained_model), str(untrained_model),
                                     "--tta", "h,d"])
    assert flips.exit_code == 2 and "unknown flip 'd'" in flips.output
    rule = CliRunner().invoke(app, ["predict", str(untrained_model), str(untrained_model),
                                    "--nested", "decay:2"])
    assert rule.exit_code == 2 and "nested: expected MODE[:IOS[:DECAY]]" in rule.output
    photo = tmp_path / "p.jpg"
    Image.new("RGB", (64, 48), (120, 120, 120)).save(photo)
    onnx_gpu = CliRunner().invoke(app, ["predict", str(untrained_model), str(photo), "--runtime",
                                        "onnx", "--device", "cuda", "--out", str(tmp_path / "o")])
    assert onnx_gpu.exit_code == 2 and "runtime onnx runs on the CPU" in onnx_gpu.output
    if not torch.cuda.is_available():
        gpu = CliRunner().invoke(app, ["predict", str(untrained_model), str(photo), "--device",
                                       "cuda", "--out", str(tmp_path / "o")])
        assert gpu.exit_code == 2 and "device cuda: no CUDA GPU is visible" in gpu.output
    assert not (tmp_path / "o").exists()  # nothing written before the predictor is ready


def test_onnx_runtime_gives_the_torch_detections(
    sample: Path, untrained_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    photo = [sample / "val" / PHOTO]
    got = {}
    for runtime in ("torch", "onnx"):
        model = load_model(untrained_model, runtime, threads=2)
        assert model.runtime == runtime
        predictor = build_predictor(model, score_threshold=0.05, scale=0.25)
        assert (predictor.tile_size, predictor.min_overlap) == (512, 128)  # from the spec
        got[runtime] = run.predict_photos(predictor, photo, {PHOTO: 5},
                                          model.spec.category_ids)[0]
    torch_res, onnx_res = got["torch"], got["onnx"]
    assert torch_res.error is None and onnx_res.error is None
    assert len(onnx_res.detections) == pytest.approx(len(torch_res.detections), abs=2)
    assert onnx_res.max_score() == pytest.approx(torch_res.max_score(), abs=1e-3)


def test_bomb_among_good_photos_is_skipped_and_left_out_of_evaluate(
    sample: Path, untrained_model: Path, tmp_path: Path
) -> None:
    good = ["red_DSC_0879.JPG", "red_DSC_0880.JPG"]
    bomb = _png_claiming(tmp_path / "bomb.png", 20000)  # 4e8 pixels, 200 bytes
    val = json.loads((sample / "annotations" / "val.json").read_text())
    images = [im for im in val["images"] if im["file_name"] in good]
    ids = {im["id"] for im in images}
    gt = {"categories": val["categories"],
          "images": [*images, {"id": 9999, "file_name": "bomb.png", "width": 20000,
                               "height": 20000}],
          "annotations": [a for a in val["annotations"] if a["image_id"] in ids]}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    out = tmp_path / "out"
    photos = [str(sample / "val" / good[0]), str(bomb), str(sample / "val" / good[1])]
    res = CliRunner().invoke(app, ["predict", str(untrained_model), *photos, "--gt", str(gt_path),
                                   "--out", str(out), "--scale", "0.25", "--threads", "2"])
    assert res.exit_code == 1, res.output  # a photo failed: the good results are kept
    skipped = [ln for ln in res.output.splitlines() if "bomb.png" in ln]
    assert len(skipped) == 1 and "refused as a possible decompression bomb" in skipped[0]
    assert "2/3 photos predicted" in res.output
    rows = list(csv.DictReader((out / "verdicts.csv").open()))
    assert sorted(int(r["image_id"]) for r in rows) == sorted(ids)
    dets = json.loads((out / "results.bbox.json").read_text())
    assert {d["image_id"] for d in dets} <= ids and dets
    scored = CliRunner().invoke(app, ["evaluate", str(gt_path), str(out / "results.bbox.json")])
    assert scored.exit_code == 0, scored.output
    assert scored.stderr.startswith(f"scored 2 of 3 ground-truth photos, those listed in "
                                    f"{out / 'image_ids.json'} (1 without predictions left out")
    assert "1 photo(s) listed were not predicted (no row in verdicts.csv" in scored.stderr
