"""``scratchdet evaluate`` scores the photos that were predicted and refuses bad inputs.

The real val split (167 photos) with predictions for the 16 photos of the sample only: the
other 151 are left out unless asked for, and every bad number is refused before scoring.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.evaluation import evaluate
from scratchdet.evaluation.inputs import ScopeError, scope_inputs

from .coco_helpers import CATS
from .coco_helpers import ann as _ann
from .coco_helpers import det as _det
from .coco_helpers import img as _img

runner = CliRunner()


def _predicted_sample(sample: Path, out: Path, listing: bool = True) -> tuple[Path, set[int]]:
    """Detections (the GT boxes, moved 2 px, + one false box) on the 16 sample val photos;
    with ``listing`` predict's image_ids.json and verdicts.csv beside them."""
    gt = json.loads((sample / "annotations" / "val.json").read_text())
    names = {p.name for p in (sample / "val").iterdir()}
    ids = {im["file_name"]: im["id"] for im in gt["images"] if im["file_name"] in names}
    dets = [_det(a["image_id"], [a["bbox"][0] + 2, a["bbox"][1], *a["bbox"][2:]], 0.9)
            for a in gt["annotations"] if a["image_id"] in ids.values()]
    dets.append(_det(min(ids.values()), [10, 10, 30, 30], 0.95))
    out.mkdir(parents=True)
    (out / "results.bbox.json").write_text(json.dumps(dets))
    if listing:
        (out / "image_ids.json").write_text(json.dumps(ids))
        with (out / "verdicts.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "verdict", "image_id"])
            writer.writerows([name, "pass", i] for name, i in ids.items())
    return out / "results.bbox.json", set(ids.values())


def _ap50(output: str) -> float:
    line = next(ln for ln in output.splitlines() if ln.split()[:3] == ["AP", "0.50", "all"])
    return float(line.split()[3])


def test_only_the_predicted_photos_are_scored(sample: Path, tmp_path: Path) -> None:
    gt = sample / "annotations" / "val.json"
    dets, ids = _predicted_sample(sample, tmp_path / "pred")
    res = runner.invoke(app, ["evaluate", str(gt), str(dets)])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == (
        f"scored 16 of 167 ground-truth photos, those listed in {dets.parent / 'image_ids.json'}"
        " (151 without predictions left out; --all-gt to score them as misses)")
    coco = json.loads(gt.read_text())
    subset = {**coco, "images": [im for im in coco["images"] if im["id"] in ids],
              "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}
    want = evaluate(subset, json.loads(dets.read_text()))
    assert _ap50(res.stdout) == round(want.value("AP", "0.50"), 3) > 0.9
    written = runner.invoke(app, ["evaluate", str(gt), str(dets), "--out", str(tmp_path / "ev")])
    assert written.exit_code == 0 and written.stdout.startswith(res.stdout)
    assert "(16 of 167 photos)" in (tmp_path / "ev" / "metrics.md").read_text().splitlines()[0]

    folder = runner.invoke(app, ["evaluate", str(gt), str(dets), "--images-dir",
                                 str(sample / "val")])
    assert folder.exit_code == 0 and folder.stdout == res.stdout
    assert f"those found in {sample / 'val'} (151 without" in folder.stderr
    names = tmp_path / "names.txt"
    names.write_text("# predicted\n" + "\n".join(p.name for p in (sample / "val").iterdir()))
    numbers = tmp_path / "ids.json"
    numbers.write_text(json.dumps(sorted(ids)))
    for listing in (names, numbers):
        listed = runner.invoke(app, ["evaluate", str(gt), str(dets), "--images-list",
                                     str(listing)])
        assert listed.exit_code == 0 and listed.stdout == res.stdout


def test_all_gt_and_no_listing_score_every_photo(sample: Path, tmp_path: Path) -> None:
    gt = sample / "annotations" / "val.json"
    dets, _ = _predicted_sample(sample, tmp_path / "pred")
    everything = runner.invoke(app, ["evaluate", str(gt), str(dets), "--all-gt"])
    assert everything.exit_code == 0, everything.output
    assert everything.stderr.splitlines() == [
        "scored 167 of 167 ground-truth photos (156 without any detection, scored as "
        "predicted empty)"]
    want = evaluate(gt, json.loads(dets.read_text()))
    assert _ap50(everything.stdout) == round(want.value("AP", "0.50"), 3) < 0.2

    bare, _ = _predicted_sample(sample, tmp_path / "bare", listing=False)
    res = runner.invoke(app, ["evaluate", str(gt), str(bare)])
    assert res.exit_code == 0 and res.stdout == everything.stdout
    first, warning = res.stderr.splitlines()
    assert first == "scored 167 of 167 ground-truth photos"
    assert warning.startswith("warning: 156 of 167 ground-truth photos have no detection and are "
                              "scored as predicted empty (150 box(es) on them count as misses)")
    assert "--images-dir or --images-list" in warning


def test_a_listed_photo_without_detection_is_scored(tmp_path: Path) -> None:
    """A clean photo predicted without a box, or a scratched one whose box was missed, is a
    prediction of 'nothing': listed, it counts (a miss for the scratched one)."""
    gt = {"images": [_img(1, "white_a.jpg"), _img(2, "white_b.jpg"), _img(3, "red_c.jpg"),
                     _img(4, "red_d.jpg")],
          "annotations": [_ann(1, 1, [10, 10, 50, 50]), _ann(2, 2, [10, 10, 50, 50]),
                          _ann(3, 4, [10, 10, 50, 50])],
          "categories": CATS}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    pred = tmp_path / "pred"
    pred.mkdir()
    dets = pred / "results.bbox.json"
    dets.write_text(json.dumps([_det(1, [10, 10, 50, 50], 0.9)]))
    (pred / "image_ids.json").write_text(json.dumps({"white_a.jpg": 1, "white_b.jpg": 2,
                                                     "red_c.jpg": 3}))
    scope = scope_inputs(gt_path, dets)
    listed = f"listed in {pred / 'image_ids.json'}"
    assert (scope.scored, scope.total, scope.chosen_by) == (3, 4, listed)
    result = evaluate(scope.gt, scope.detections, part_level=True)
    assert result.value("AR", "0.50") == 0.5  # photo 2's box is a miss; photo 4 left out
    assert result.summaries["all"].images == 3 and result.summaries["red"].images == 1
    assert result.part_level.groups["all"].auroc == pytest.approx(0.75)  # 3 clean is negative


@pytest.mark.parametrize(
    ("listing", "expected"),
    [({"white_a.jpg": 1, "red_b.jpg": 7}, r"'red_b.jpg': image id 7 is not in the ground truth"),
     ({"white_a.jpg": 2, "red_b.jpg": 1}, r"was predict given it with --gt\?\): 2 error\(s\)"),
     ({"white_a.jpg": 1}, r"detections on 1 photo\(s\) that .* does not list as predicted")],
)
def test_listing_of_another_run_is_refused(tmp_path: Path, listing: dict, expected: str) -> None:
    gt = {"images": [_img(1, "white_a.jpg"), _img(2, "red_b.jpg")], "annotations": [],
          "categories": CATS}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    dets = tmp_path / "results.bbox.json"
    dets.write_text(json.dumps([_det(1, [0, 0, 5, 5], 0.5), _det(2, [0, 0, 5, 5], 0.5)]))
    (tmp_path / "image_ids.json").write_text(json.dumps(listing))
    with pytest.raises(ScopeError, match=expected):
        scope_inputs(gt_path, dets)
    res = runner.invoke(app, ["evaluate", str(gt_path), str(dets)])
    assert res.exit_code == 2 and "--all-gt" in res.output
    assert runner.invoke(app, ["evaluate", str(gt_path), str(dets), "--all-gt"]).exit_code == 0


def test_one_way_to_choose_the_photos_at_most(tmp_path: Path) -> None:
    res = runner.invoke(app, ["evaluate", "gt.json", "d.json", "--all-gt", "--images-dir", "x"])
    assert res.exit_code == 2
    assert "--all-gt, --images-list and --images-dir: give one at most" in res.output


GT_BOX = [100, 100, 50, 50]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda a: a.update(bbox=[100, 100, float("nan"), 50]), "bbox [100, 100, nan, 50]: not "
         "finite (NaN or infinity; expected 4 finite numbers)"),
        (lambda a: a.update(bbox=[100, 100, 50, float("inf")]), "bbox [100, 100, 50, inf]: not "
         "finite"),
        (lambda a: a.update(bbox=[100, 100, -50, 50]), "bbox [100, 100, -50, 50]: zero or "
         "negative size (expected w > 0 and h > 0)"),
        (lambda a: a.update(bbox=["100", 100, 50, 50]), "bbox ['100', 100, 50, 50]: expected "
         "[x, y, w, h] numbers"),
        (lambda a: a.update(id=1), "duplicate annotation id (also annotations[0])"),
        (lambda a: a.update(area=float("nan")), "area nan: expected a finite number >= 0"),
    ],
)
def test_bad_ground_truth_is_refused(tmp_path: Path, change: Any, expected: str) -> None:
    anns = [_ann(1, 1, GT_BOX), _ann(2, 2, GT_BOX)]
    change(anns[1])
    gt = {"images": [_img(1, "white_a.jpg"), _img(2, "red_b.jpg")], "annotations": anns,
          "categories": CATS}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))  # Python's json writes NaN and Infinity as tokens
    dets = tmp_path / "d.json"
    dets.write_text(json.dumps([_det(1, GT_BOX, 0.9)]))
    out = tmp_path / "ev"
    res = runner.invoke(app, ["evaluate", str(gt_path), str(dets), "--out", str(out)])
    assert res.exit_code == 2
    assert f"{gt_path}: ground truth refused: 1 error(s):" in res.output
    assert f"{gt_path}: annotation id {anns[1]['id']} (image id 2 'red_b.jpg'): {expected}" \
        in res.output
    assert "nothing was scored" in res.output and not out.exists()
    with pytest.raises(ValueError, match="ground truth refused"):
        evaluate(gt, [])


@pytest.mark.parametrize(
    ("det", "expected"),
    [
        ({"image_id": None}, "image_id None is not in the ground truth"),
        ({"image_id": 7}, "image_id 7 is not in the ground truth"),
        ({"image_id": "1"}, "image_id '1' is not in the ground truth"),
        ({"score": [0.5]}, "score [0.5]: expected a finite number in [0, 1]"),
        ({"score": "0.5"}, "score '0.5': expected a finite number in [0, 1]"),
        ({"score": 1.5}, "score 1.5: expected a finite number in [0, 1]"),
        ({"score": float("nan")}, "score nan: expected a finite number in [0, 1]"),
        ({"score": True}, "score True: expected a finite number in [0, 1]"),
        ({"bbox": [1, 2, 0, 4]}, "bbox [1, 2, 0, 4]: zero or negative size"),
        ({"bbox": [1, 2, float("inf"), 4]}, "bbox [1, 2, inf, 4]: not finite"),
        ({"bbox": [1, 2, 3]}, "bbox [1, 2, 3]: expected [x, y, w, h] numbers"),
        ({"category_id": 2}, "category_id 2 is not in the ground truth's categories [1]"),
    ],
)
def test_bad_detections_are_refused(tmp_path: Path, det: dict, expected: str) -> None:
    gt = {"images": [_img(1, "white_a.jpg")], "annotations": [_ann(1, 1, GT_BOX)],
          "categories": CATS}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    dets = tmp_path / "d.json"
    dets.write_text(json.dumps([_det(1, GT_BOX, 0.9), {**_det(1, GT_BOX, 0.5), **det}]))
    res = runner.invoke(app, ["evaluate", str(gt_path), str(dets)])
    assert res.exit_code == 2
    assert f"{dets}: detections refused: 1 error(s):" in res.output
    image_id = det.get("image_id", 1)
    assert f"{dets}: detection #1 (image_id {image_id!r}): {expected}" in res.output
    assert "AP" not in res.stdout


def test_every_bad_record_is_listed_at_once(tmp_path: Path) -> None:
    gt = {"images": [_img(1, "white_a.jpg")], "annotations": [_ann(1, 1, GT_BOX)],
          "categories": CATS}
    bad = [{**_det(1, GT_BOX, 0.5), "score": -1} for _ in range(25)]
    with pytest.raises(ValueError, match=r"25 error\(s\):\n(  .*\n){20}  \.\.\. and 5 more$"):
        evaluate(gt, bad)
