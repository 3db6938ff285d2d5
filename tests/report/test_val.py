"""``scratchdet val`` and its summary-first report."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from evaluation.coco_helpers import TWO_PHOTOS_DETS as DETS
from evaluation.coco_helpers import TWO_PHOTOS_GT as GT
from scratchdet.cli import app
from scratchdet.commands.val import threshold_origin
from scratchdet.evaluation import evaluate
from scratchdet.evaluation.analyze import write_analysis
from scratchdet.evaluation.box_stats import box_stats
from scratchdet.evaluation.confidence import part_prf1
from scratchdet.report.assemble import worst_photo_blocks
from scratchdet.report.html import Gallery, Report
from scratchdet.report.summary import verdict_sentence
from scratchdet.report.training import training_blocks
from scratchdet.report.validation import val_report

PHOTOS = ("red_DSC_1135.JPG", "white_DSC_0439.JPG", "white_train_clean_img298.JPG")
LOG = ("epoch,step,train/loss,val/AP,val/AP50\n0,4,0.9,,\n0,8,0.7,,\n0,8,,0.10,0.30\n"
       "1,12,0.5,,\n1,16,,0.20,0.45\n")


def _text(markup: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)).strip()


def _section(html: str, anchor: str) -> str:
    start = html.index(f'<h2 id="{anchor}">')
    end = html.find("<h2", start + 1)
    return html[start:] if end < 0 else html[start:end]


def _galleries(html: str) -> list[tuple[str, list[str], list[str]]]:
    """(title, figure captions, image data) of each gallery, in order."""
    out = []
    for block in re.findall(r'<div class="gallery">(.*?)</div>', html, flags=re.S):
        title = re.search(r"<h3>(.*?)</h3>", block).group(1)  # type: ignore[union-attr]
        out.append((title, re.findall(r"<figcaption>(.*?)</figcaption>", block),
                    re.findall(r'<img src="([^"]+)"', block)))
    return out


@pytest.fixture()
def stamped_model(untrained_model: Path, tmp_path: Path) -> Path:
    """The untrained model in a run folder with a CSV log, carrying threshold 0.6."""
    from scratchdet.artifact import stamp_threshold

    run = tmp_path / "run"
    (run / "logs" / "csv" / "version_0").mkdir(parents=True)
    (run / "logs" / "csv" / "version_0" / "metrics.csv").write_text(LOG)
    model = Path(shutil.copy(untrained_model, run / "model.pt"))
    stamp_threshold(model, 0.6, "picked in a test")
    return model


def test_val_writes_everything_and_the_summary_matches_the_evaluator(
        stamped_model: Path, sample_subset: Callable[..., Path], tmp_path: Path) -> None:
    root = sample_subset({"val": PHOTOS})
    gt_path, out = root / "annotations" / "val.json", tmp_path / "val"
    args = ["val", str(stamped_model), str(gt_path), str(root / "val"), "--out", str(out), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    for name in ("predict/results.bbox.json", "predict/verdicts.csv", "eval/metrics.json",
                 "eval/part_level.md", "eval/confidence.json", "analysis/analysis.json",
                 "report.html", "summary.json"):
        assert (out / name).is_file(), name

    coco = json.loads(gt_path.read_text())  # the evaluator, run here on the same 3 photos
    coco["images"] = [im for im in coco["images"] if im["file_name"] in PHOTOS]
    ids = {im["id"] for im in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    result = evaluate(coco, out / "predict" / "results.bbox.json", part_level=True)
    assert result.part_level is not None
    p = result.part_level.at(0.6)
    assert (p.scratched, p.clean) == (2, 1)
    dets = json.loads((out / "predict" / "results.bbox.json").read_text())
    elsewhere = box_stats(coco, dets, 0.6).caught_elsewhere
    lines = res.output.splitlines()
    also = f" ({elsewhere} only by boxes on no labelled scratch)" if elsewhere else ""
    assert lines[0] == (f"caught {p.caught}/2 scratched parts{also}, rejected {p.rejected}/1 "
                        "clean parts at threshold 0.6 (from the model (picked in a test))")
    ap50 = {g: result.value("AP", "0.50", group=g) for g in ("all", "white", "red")}
    assert lines[1] == (f"AP50 {ap50['all']:.3f} (white {ap50['white']:.3f}, red "
                        f"{ap50['red']:.3f}), AP {result.value('AP'):.3f}")
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["caught"], summary["rejected"], summary["threshold"]) == (p.caught,
                                                                              p.rejected, 0.6)
    assert summary["caught_elsewhere"] == elsewhere

    html = (out / "report.html").read_text()
    first = _text(_section(html, "summary"))
    assert html.index('<h2 id="summary">') < html.index("<h2", html.index("<h2") + 1)
    assert ("group scratched parts caught (rejected) missed (passed) clean parts passed "
            "rejected (scrapped)") in first
    assert (f"scratched part {p.caught} {2 - p.caught} clean part {p.rejected} "
            f"{1 - p.rejected}") in first
    assert "-1.000" not in html and "all: clean rejected" in html
    assert "training loss" in _section(html, "training-curves")

    analysis = json.loads((out / "analysis" / "analysis.json").read_text())
    galleries = _galleries(html)
    assert [t.split()[1] for t, _, _ in galleries] == [e["file_name"] for e in
                                                       analysis["worst"]]
    for (title, captions, images), entry in zip(galleries, analysis["worst"], strict=True):
        name = entry["file_name"]
        assert name in title and captions[0] == "whole photo"  # then its crops in order
        assert captions[1:] == [f"crop {j} of {name}" for j in range(1, len(captions))]
        assert len(set(images)) == len(images)  # no crop twice

    again = CliRunner().invoke(app, args)  # refused before the model is even loaded
    assert again.exit_code == 2 and "already exists; pass --force" in again.output


def _analysis_dir(tmp_path: Path) -> Path:
    images = tmp_path / "img"
    images.mkdir()
    for im in GT["images"]:
        PILImage.new("RGB", (640, 480), (90, 90, 90)).save(images / im["file_name"])
    # two more false boxes inside the first one's crop: no crop of their own
    dets = [*DETS, {"image_id": 2, "bbox": [105, 105, 5, 5], "score": 0.45, "category_id": 1},
            {"image_id": 2, "bbox": [110, 100, 6, 6], "score": 0.42, "category_id": 1}]
    write_analysis(GT, dets, images, tmp_path / "an", top_k=2, score_thr=0.3)
    return tmp_path / "an"


def test_val_report_from_synthetic_coco(tmp_path: Path) -> None:
    result = evaluate(GT, DETS, part_level=True, target_recall=0.95)
    assert result.part_level is not None
    report = val_report(result.to_dict(), _analysis_dir(tmp_path), 0.5, "set by --threshold",
                        (), part_prf1(result.part_level))
    html = report.render()
    assert [s.title for s in report.sections][:3] == [
        "Summary", "Precision, recall and F1 by confidence", "COCO metrics"]
    first = _text(_section(html, "summary"))
    assert ("At threshold 0.5 (set by --threshold): of 1 scratched parts, 1 caught and 0 "
            "missed; of 1 clean parts, 1 passed and 0 rejected") in first
    assert "scratched part 1 0 clean part 0 1" in first
    assert "all 1 1 (100%) 0 (0%) 1 1 (100%) 0 (0%)" in first
    assert "-1.000" not in html and "\u2013" in _section(html, "coco-metrics")
    galleries = _galleries(html)
    assert [t.split()[1] for t, _, _ in galleries] == ["red_b.jpg", "white_a.jpg"]
    assert len(galleries[0][2]) == 2  # overlay + one crop: the nested false boxes share it
    assert "No training curves" in _section(html, "training-curves")


def test_parts_caught_only_by_boxes_elsewhere_are_said() -> None:
    # the scratched white_a fails at 0.5 only for a box far from its scratch
    dets = [{"image_id": 1, "bbox": [400, 300, 30, 30], "score": 0.8, "category_id": 1},
            {"image_id": 1, "bbox": [10, 10, 50, 50], "score": 0.3, "category_id": 1}]
    result = evaluate(GT, dets, part_level=True)
    assert result.part_level is not None
    point = result.part_level.at(0.5)
    elsewhere = box_stats(GT, dets, 0.5).caught_elsewhere
    assert (point.caught, elsewhere) == (1, 1)
    assert verdict_sentence(point, "set by --threshold", elsewhere) == (
        "caught 1/1 scratched parts (1 only by boxes on no labelled scratch), rejected 0/1 "
        "clean parts at threshold 0.5 (set by --threshold)")
    assert box_stats(GT, dets, 0.2).caught_elsewhere == 0  # the right box counts from 0.3
    html = val_report(result.to_dict(), None, 0.5, "set by --threshold",
                      elsewhere=elsewhere).render()
    assert ("of 1 scratched parts, 1 caught (1 only by boxes on no labelled scratch) and 0 "
            "missed") in _text(_section(html, "summary"))


def test_gallery_lists_each_photo_once(tmp_path: Path) -> None:
    analysis = _analysis_dir(tmp_path)
    data = json.loads((analysis / "analysis.json").read_text())
    entry = data["worst"][0]
    entry["crops"] = entry["crops"] * 2  # a repeated crop file is shown once
    data["worst"].append(dict(entry))  # and a repeated photo too
    (analysis / "analysis.json").write_text(json.dumps(data))
    galleries = [b for b in worst_photo_blocks(analysis) if isinstance(b, Gallery)]
    assert [g.title.split()[1] for g in galleries] == ["red_b.jpg", "white_a.jpg"]
    assert [len(g.images) for g in galleries] == [2, 2]  # overlay + one crop each
    report = Report()
    report.add_section("Worst photos", *worst_photo_blocks(analysis))
    assert "n/a" in report.render()  # a clean photo's AP50 cell


def test_training_blocks_with_and_without_a_log(tmp_path: Path) -> None:
    model = tmp_path / "run" / "checkpoints" / "best.ckpt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")
    note = training_blocks(model)
    assert len(note) == 1 and "No training curves" in note[0].text  # type: ignore[union-attr]
    assert str(model.parent.resolve()) in note[0].text  # type: ignore[union-attr]
    log = tmp_path / "run" / "logs" / "csv" / "version_0" / "metrics.csv"
    log.parent.mkdir(parents=True)
    log.write_text(LOG)
    blocks = training_blocks(model)  # <run>/checkpoints/x.ckpt: the run is one folder up
    assert type(blocks[-1]).__name__ == "Image" and str(log.resolve()) in blocks[0].text  # type: ignore[union-attr]


def test_threshold_origin_says_where_the_threshold_came_from() -> None:
    assert threshold_origin(0.3, 0.3, None) == "set by --threshold"
    assert threshold_origin(0.5, None, None).startswith("the default: the model stores no")
    assert threshold_origin(0.2, None, "threshold 0.2 from the model (crossval pick)") == (
        "from the model (crossval pick)")
