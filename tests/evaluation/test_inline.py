"""The evaluator on tiny inline COCO: empty inputs, false positives, band edges, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scratchdet.evaluation import SizeBand, evaluate, parse_bands

from .coco_helpers import CATS
from .coco_helpers import ann as _ann
from .coco_helpers import det as _det
from .coco_helpers import img as _img

GT = {"images": [_img(1, "white_a.jpg"), _img(2, "red_b.jpg")],
      "annotations": [_ann(1, 1, [100, 100, 50, 50])], "categories": CATS}


def test_empty_ground_truth_gives_minus_one() -> None:
    gt = {**GT, "annotations": []}
    result = evaluate(gt, [_det(1, [0, 0, 10, 10], 0.9)], part_level=True)
    assert result.value("AP", "0.50:0.95") == -1.0
    assert result.value("AR", "0.50", band="0-40^2", group="red") == -1.0
    assert result.part_level.groups["all"].auroc is None


def test_empty_detections_give_zero() -> None:
    result = evaluate(GT, [])
    assert result.value("AP", "0.50") == 0.0
    assert result.value("AR", "0.50:0.95") == 0.0
    assert result.value("AP", "0.50", group="red") == -1.0  # red photo has no box


def test_photo_with_only_false_positives() -> None:
    tp = _det(1, [100, 100, 50, 50], 0.9)
    fp_high = evaluate(GT, [tp, _det(2, [10, 10, 50, 50], 0.95)])
    assert fp_high.value("AP", "0.50") == pytest.approx(0.5)  # precision 1/2 at every recall
    assert fp_high.value("AR", "0.50") == 1.0
    fp_low = evaluate(GT, [tp, _det(2, [10, 10, 50, 50], 0.5)])
    assert fp_low.value("AP", "0.50") == pytest.approx(1.0)
    assert fp_low.value("AP", "0.50", group="red") == -1.0


def test_box_exactly_on_band_edge_counts_in_both_bands() -> None:
    gt = {**GT, "annotations": [_ann(1, 1, [100, 100, 40, 40])]}  # area 1600 == 40^2
    result = evaluate(gt, [_det(1, [100, 100, 40, 40], 0.9)])
    assert result.value("AP", "0.50", band="0-40^2") == pytest.approx(1.0)
    assert result.value("AP", "0.50", band="40^2-70^2") == pytest.approx(1.0)
    assert result.value("AP", "0.50", band="70^2-96^2") == -1.0
    assert result.summaries["all"].boxes["0-40^2"] == 1


def test_custom_bands_and_group_by_state() -> None:
    bands = parse_bands("small=0:40,big=40:1e5")
    result = evaluate(GT, [_det(1, [100, 100, 50, 50], 0.9)], bands=bands, group_by="state")
    assert [b.name for b in result.bands] == ["all", "small", "big"]
    assert result.groups == ("all", "clean", "scratched")
    assert result.value("AP", "0.50", band="big", group="scratched") == pytest.approx(1.0)
    assert result.value("AP", "0.50", band="small") == -1.0
    with pytest.raises(KeyError, match="bands: all, small, big"):
        result.value("AP", "0.50", band="0-40^2")


def test_group_by_none_gives_only_all() -> None:
    result = evaluate(GT, [], group_by=None)
    assert result.groups == ("all",)


def test_bad_inputs_name_file_record_and_expectation(tmp_path: Path) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([_det(1, [0, 0, 5, 5], 0.5), _det(7, [0, 0, 5, 5], 0.5)]))
    with pytest.raises(ValueError, match=r"dets.json: detection #1 \(image_id 7\): image_id 7 "
                                         r"is not in the ground truth"):
        evaluate(GT, dets)
    with pytest.raises(ValueError, match=r"detection #0 \(image_id 1\): missing score"):
        evaluate(GT, [{"image_id": 1, "bbox": [0, 0, 1, 1], "category_id": 1}])
    with pytest.raises(ValueError, match=r"category_id 0 is not in"):
        evaluate(GT, [{**_det(1, [0, 0, 1, 1], 0.5), "category_id": 0}])
    with pytest.raises(ValueError, match="group_by 'site': no photo has this attribute"):
        evaluate(GT, [], group_by="site")
    with pytest.raises(FileNotFoundError, match=r"nope\.json: ground-truth COCO file not found"):
        evaluate(tmp_path / "nope.json", [])


def test_band_names_and_validation() -> None:
    names = [b.name for b in parse_bands("0:40,40:70,70:96,96:1e5")]
    assert names == ["0-40^2", "40^2-70^2", "70^2-96^2", "96^2-1e5^2"]
    assert parse_bands("0:40")[0] == SizeBand("0-40^2", 0.0, 1600.0)
    with pytest.raises(ValueError, match="expected LO:HI"):
        parse_bands("0-40")
    with pytest.raises(ValueError, match="lo_area < hi_area"):
        parse_bands("40:10")
    with pytest.raises(ValueError, match="reserved"):
        evaluate(GT, [], bands=[SizeBand("all", 0, 10)])


def test_extra_image_field_can_be_the_grouping() -> None:
    gt = {**GT, "images": [{**_img(1, "white_a.jpg"), "site": "A"},
                           {**_img(2, "red_b.jpg"), "site": "B"}]}
    result = evaluate(gt, [_det(1, [100, 100, 50, 50], 0.9)], group_by="site")
    assert result.groups == ("all", "A", "B")
    assert result.value("AP", "0.50", group="A") == pytest.approx(1.0)


def test_to_dict_is_json_able() -> None:
    result = evaluate(GT, [_det(1, [100, 100, 50, 50], 0.9)], part_level=True)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["groups"] == ["all", "white", "red"]
    assert len(data["pr_curves"]["recall"]) == 101


def test_minimal_coco_without_sizes_or_area() -> None:
    gt = {"images": [{"id": 1, "file_name": "red_x.jpg"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 30]}],
          "categories": CATS}
    result = evaluate(gt, [_det(1, [0, 0, 30, 30], 0.8)])
    assert result.groups == ("all", "red")
    assert result.value("AP", "0.50", band="0-40^2", group="red") == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"images\[0\] image id None 'a.jpg': missing or "
                                         r"invalid id \(expected an int id\)"):
        evaluate({**gt, "images": [{"file_name": "a.jpg"}]}, [])


def test_from_dict_round_trip() -> None:
    from scratchdet.evaluation import EvaluationResult

    result = evaluate(GT, [_det(1, [100, 100, 50, 50], 0.9), _det(2, [9, 9, 9, 9], 0.2)],
                      part_level=True, target_recall=1.0)
    again = EvaluationResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
