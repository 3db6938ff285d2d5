"""The one overlay style: label placement (exact table), near-misses, the cropped view."""

from __future__ import annotations

from itertools import combinations, pairwise
from pathlib import Path

import pytest
from PIL import Image

from scratchdet.overlay import (
    KEPT,
    NEAR,
    Mark,
    draw_marks,
    marks_at,
    place_labels,
    render,
    view_window,
)

GREY = (128, 128, 128)

# (boxes, label sizes, canvas, taken) -> label rectangles; gap 1 px
PLACEMENTS = [
    # alone: above the box, at its left edge
    ([(10, 20, 30, 30)], [(12, 8)], (100, 60), [], [(10, 11, 22, 19)]),
    # no room above: below
    ([(10, 2, 30, 12)], [(12, 8)], (100, 60), [], [(10, 13, 22, 21)]),
    # at the right edge: shifted left into the canvas
    ([(90, 50, 99, 59)], [(20, 8)], (100, 60), [], [(80, 41, 100, 49)]),
    # the second label's spot above is taken: below
    ([(10, 20, 30, 30), (12, 20, 32, 30)], [(12, 8)] * 2, (100, 60), [],
     [(10, 11, 22, 19), (12, 31, 24, 39)]),
    # above, below, inside, then inside shifted down past what it overlaps
    ([(10, 20, 30, 30)] * 4, [(12, 8)] * 4, (100, 60), [],
     [(10, 11, 22, 19), (10, 31, 22, 39), (10, 21, 22, 29), (10, 40, 22, 48)]),
    # a title band taken: below instead of above
    ([(10, 12, 30, 30)], [(12, 8)], (100, 60), [(0, 0, 100, 10)], [(10, 31, 22, 39)]),
    # no free spot inside the canvas: not placed
    ([(0, 2, 10, 18)], [(10, 8)], (40, 20), [(0, 0, 40, 20)], [None]),
]


@pytest.mark.parametrize(("boxes", "sizes", "canvas", "taken", "expected"), PLACEMENTS)
def test_label_placement_table(boxes, sizes, canvas, taken, expected) -> None:
    assert place_labels(boxes, sizes, canvas, taken) == expected


def test_marks_keep_and_near_misses_above_half_the_threshold() -> None:
    boxes = [(0, 0, 1, 1), (1, 1, 2, 2), (2, 2, 3, 3), (3, 3, 4, 4)]
    marks = marks_at(boxes, [0.47, 0.9, 0.2, 0.25], threshold=0.5)
    assert [(m.kind, m.label) for m in marks] == [("kept", "0.90"), ("near", "0.47"),
                                                  ("near", "0.25")]  # 0.2 < 0.5 / 2: dropped


def test_view_window_is_the_region_plus_margin_and_covers_every_box() -> None:
    assert view_window((800, 600), None) == (0, 0, 800, 600)
    assert view_window((800, 600), (200, 150, 600, 450)) == (184, 134, 616, 466)
    outside = [Mark((100.0, 160.0, 120.0, 170.0), "kept")]
    assert view_window((800, 600), (200, 150, 600, 450), outside) == (84, 134, 616, 466)
    assert view_window((800, 600), (10, 10, 790, 590)) == (0, 0, 800, 600)  # clipped


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "part.png"
    Image.new("RGB", (800, 600), GREY).save(path)
    return path


def test_overlay_is_the_part_region_with_a_margin_scaled(tmp_path: Path) -> None:
    marks = marks_at([(250, 200, 300, 230), (400, 300, 450, 330)], [0.8, 0.3], 0.5)
    region = (200, 150, 600, 450)  # window (184, 134, 616, 466): 432 x 332
    assert render(_photo(tmp_path), marks, region, max_side=216).size == (216, 166)
    assert render(_photo(tmp_path), marks, None, max_side=400).size == (400, 300)


def test_near_miss_dashed_and_kept_box_solid(tmp_path: Path) -> None:
    marks = marks_at([(250, 200, 300, 230), (400, 300, 450, 330)], [0.8, 0.3], 0.5)
    img = render(_photo(tmp_path), marks, (200, 150, 600, 450), max_side=None)
    # scale 1, offset (184, 134), line 2 px outside each box
    near_top = [img.getpixel((x, 164)) for x in range(214, 269)]
    runs = sum(1 for a, b in pairwise(near_top) if a != b)
    assert near_top.count(NEAR) > 20 and near_top.count(GREY) > 10 and runs >= 6
    kept_top = [img.getpixel((x, 64)) for x in range(64, 119)]
    assert set(kept_top) == {KEPT}


def test_labels_never_overlap() -> None:
    img = Image.new("RGB", (300, 200), GREY)
    marks = [Mark((100.0 + k, 80.0 + k, 140.0 + k, 100.0 + k), "kept" if k % 2 else "near",
                  f"0.{90 - k}") for k in range(10)]
    spots = draw_marks(img, marks, font_size=12)
    placed = [s for s in spots if s is not None]
    assert len(placed) >= 8
    for a, b in combinations(placed, 2):
        assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    for x0, y0, x1, y1 in placed:
        assert 0 <= x0 < x1 <= 300 and 0 <= y0 < y1 <= 200


def test_service_overlay_crops_to_the_part_and_draws_near_misses(tmp_path: Path) -> None:
    import io

    from scratchdet.service.imaging import render_overlay

    data = render_overlay(_photo(tmp_path), [[250, 200, 300, 230]], [0.8], 0.5,
                          below_boxes=[[400, 300, 450, 330], [500, 400, 520, 410]],
                          below_scores=[0.3, 0.1], part_box=[200, 150, 600, 450], fmt="png")
    img = Image.open(io.BytesIO(data)).convert("RGB")
    assert img.size == (432, 332)  # the part region + 4 % of its side, full resolution
    colours = {c for _, c in img.getcolors(1 << 20)}
    assert KEPT in colours and NEAR in colours
    assert img.getpixel((500 - 184 - 2, 400 - 134 + 2)) == GREY  # 0.1 < 0.5 / 2: not drawn
    whole = render_overlay(_photo(tmp_path), [], [], 0.5, part_box=None, max_side=400, fmt="png")
    assert Image.open(io.BytesIO(whole)).size == (400, 300)  # a row without a part region
