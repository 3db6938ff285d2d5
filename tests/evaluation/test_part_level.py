"""Part-level view: AUROC with ties, thresholds, target recall, degenerate data."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchdet.evaluation import evaluate
from scratchdet.evaluation.image_level import (
    PhotoScore,
    auroc,
    average_ranks,
    part_group,
    pick_threshold,
)


def test_average_ranks_share_ties() -> None:
    assert average_ranks([1, 5, 5, 9]).tolist() == [1, 2.5, 2.5, 4]
    assert average_ranks([0, 0, 0]).tolist() == [2, 2, 2]


def test_auroc_counts_ties_as_half() -> None:
    # pos 0.9 beats all 3; pos 0.5: tie + 2 wins = 2.5; pos 0: tie with 0 = 0.5 -> 6/9
    assert auroc([0.9, 0.5, 0.0, 0.5, 0.0, 0.1], [True] * 3 + [False] * 3) == pytest.approx(6 / 9)
    assert auroc([0.3, 0.3], [True, False]) == 0.5
    assert auroc([0.1, 0.2], [True, True]) is None


def _photos(items: list[tuple[float, bool]]) -> list[PhotoScore]:
    return [PhotoScore(i, f"p{i}.jpg", s, y, "g") for i, (s, y) in enumerate(items)]


def test_pick_threshold_is_highest_reaching_target() -> None:
    photos = _photos([(0.9, True), (0.8, False), (0.7, True), (0.6, True), (0.2, False)])
    pick = pick_threshold(photos, 2 / 3)
    assert pick.threshold == 0.7
    assert (pick.point.caught, pick.point.rejected) == (2, 1)
    assert "1/2 (0.500) clean parts falsely rejected" in pick.message
    assert pick_threshold(photos, 1.0).threshold == 0.6


def test_unreachable_target_says_why() -> None:
    photos = _photos([(0.9, True), (0.0, True), (0.5, False)])
    pick = pick_threshold(photos, 0.95)
    assert pick.threshold is None
    assert "not reachable" in pick.message and "1 without any detection" in pick.message


def test_degenerate_groups_give_notes_not_thresholds() -> None:
    no_clean = part_group("g", _photos([(0.9, True), (0.4, True)]), 0.5)
    assert no_clean.auroc is None and "no clean photos" in no_clean.notes[0]
    assert no_clean.target.threshold == 0.9  # recall is defined; the cost is unknown
    assert "unknown (no clean photos)" in no_clean.target.message
    no_scratched = part_group("g", _photos([(0.9, False)]), 0.5)
    assert no_scratched.auroc is None and no_scratched.target.threshold is None
    nothing = part_group("g", _photos([(0.0, True), (0.0, False)]), 0.5)
    assert nothing.auroc == 0.5
    assert any("no detections" in n for n in nothing.notes)
    assert nothing.target.threshold is None and "no detections" in nothing.target.message


def test_seed_part_level_numbers(sample: Path) -> None:
    result = evaluate(sample / "annotations/test.json",
                      sample / "reference/results_all.bbox.json",
                      part_level=True, target_recall=0.95)
    part = result.part_level
    assert [round(part.groups[g].auroc, 3) for g in ("all", "white", "red")] == [
        0.874, 0.993, 0.800]
    at = part.at(0.5)
    assert (at.caught, at.scratched, at.rejected, at.clean) == (66, 88, 17, 90)
    pick = part.groups["all"].target
    assert pick.point.caught == 84 and pick.point.recall >= 0.95
    higher = [c for c in part.groups["all"].curve if c.threshold > pick.threshold]
    assert all(c.recall < 0.95 for c in higher)
    assert part.groups["red"].target.threshold is None  # 3 red scratched parts have no box
    assert result.to_dict()["part_level"]["groups"]["white"]["scratched"] == 52
