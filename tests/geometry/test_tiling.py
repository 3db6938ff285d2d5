"""Tiling: exact grids, box mapping with the edge-cut rule, merging across tiles."""

from __future__ import annotations

import numpy as np
import pytest

from scratchdet.geometry.tiling import (
    axis_starts,
    box_iou,
    boxes_from_tile,
    boxes_into_tile,
    inner_edges,
    merge_tile_detections,
    nms,
    region_pieces,
    tile_grid,
)


def test_full_photo_grid_exact_table() -> None:
    tiles = tile_grid(4608, 3072, tile=1024, min_overlap=256)
    xs = [0, 717, 1434, 2150, 2867, 3584]
    ys = [0, 683, 1365, 2048]
    assert tiles == [(x, y, x + 1024, y + 1024) for y in ys for x in xs]
    assert len(tiles) == 24


def test_full_photo_grid_properties() -> None:
    for tile, overlap in [(1024, 256), (800, 200), (512, 64), (640, 0)]:
        tiles = np.array(tile_grid(4608, 3072, tile, overlap))
        assert tiles[:, 0].min() == 0 and tiles[:, 1].min() == 0
        assert tiles[:, 2].max() == 4608 and tiles[:, 3].max() == 3072  # last tile flush
        assert (tiles[:, 2] - tiles[:, 0] == tile).all()
        assert (tiles[:, 3] - tiles[:, 1] == tile).all()
        xs = np.unique(tiles[:, 0])
        assert (np.diff(xs) <= tile - overlap).all()  # neighbours overlap by >= overlap
        assert np.ptp(np.diff(xs)) <= 1  # evenly spread


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        # 1400x1100 region: two tiles per axis, first flush with the region start, last with its end
        ((1500, 900, 2900, 2000), [(1500, 900), (1876, 900), (1500, 976), (1876, 976)]),
        # small region: one tile centred on it
        ((2000, 1000, 2300, 1200), [(1638, 588)]),
        # small region in the corner: the centred tile is shifted back into the photo
        ((4500, 3000, 4608, 3072), [(3584, 2048)]),
        # region partly outside the photo is clipped to it first
        ((-50, -50, 600, 400), [(0, 0)]),
    ],
)
def test_region_grid_exact(region: tuple[int, int, int, int], expected: list) -> None:
    tiles = tile_grid(4608, 3072, 1024, 256, region=region)
    assert tiles == [(x, y, x + 1024, y + 1024) for x, y in expected]


def test_region_grid_covers_region() -> None:
    region = (1234, 777, 3999, 2900)
    tiles = np.array(tile_grid(4608, 3072, 1024, 256, region=region))
    assert tiles[:, 0].min() == 1234 and tiles[:, 2].max() == 3999
    assert tiles[:, 1].min() == 777 and tiles[:, 3].max() == 2900


def test_photo_smaller_than_tile_gives_one_tile_of_photo_size() -> None:
    assert tile_grid(800, 600, 1024, 256) == [(0, 0, 800, 600)]
    # 2000 px wide: ceil((2000 - 256) / 768) = 3 tiles, starts 0, 488, 976
    assert tile_grid(2000, 600, 1024, 256) == [(x, 0, x + 1024, 600) for x in (0, 488, 976)]


def test_axis_starts_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="overlap"):
        axis_starts(0, 100, 100, 64, 64)
    with pytest.raises(ValueError, match="not inside"):
        axis_starts(50, 200, 100, 64, 8)
    with pytest.raises(ValueError, match="does not overlap"):
        tile_grid(100, 100, region=(200, 200, 300, 300))


def test_boxes_into_tile_clips_and_marks_truncated() -> None:
    tile = (100, 100, 200, 200)
    boxes = np.array(
        [
            [110, 110, 130, 130],  # inside
            [190, 150, 230, 160],  # 25% visible (10 of 40 px wide): kept, truncated
            [195, 150, 235, 160],  # 12.5% visible: dropped
            [300, 300, 310, 310],  # outside: dropped
            [150, 199, 160, 230],  # 1 px high visible: below min_size, dropped
        ],
        dtype=float,
    )
    out = boxes_into_tile(boxes, tile, min_visible=0.25, min_size=2)
    assert out.index.tolist() == [0, 1]
    np.testing.assert_allclose(out.boxes, [[10, 10, 30, 30], [90, 50, 100, 60]])
    assert out.truncated.tolist() == [False, True]
    empty = boxes_into_tile(np.zeros((0, 4)), tile)
    assert empty.boxes.shape == (0, 4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        boxes_into_tile(np.zeros((3, 3)), tile)


def test_boxes_from_tile_round_trip() -> None:
    tile = (717, 683, 1741, 1707)
    boxes = np.array([[10.0, 20.0, 50.0, 90.0], [1000.0, 1000.0, 1030.0, 1030.0]])
    back = boxes_from_tile(boxes, tile)
    np.testing.assert_allclose(back, [[727, 703, 767, 773], [1717, 1683, 1741, 1707]])
    np.testing.assert_allclose(boxes_into_tile(back[:1], tile).boxes, boxes[:1])


def test_inner_edges_of_a_row_of_tiles() -> None:
    tiles = [(0, 0, 100, 100), (80, 0, 180, 100), (160, 0, 260, 100)]
    np.testing.assert_array_equal(
        inner_edges(tiles),
        [[False, False, True, False], [True, False, True, False], [True, False, False, False]],
    )


def test_iou_and_nms() -> None:
    a = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], dtype=float)
    np.testing.assert_allclose(box_iou(a, a)[0], [1.0, 50 / 150, 0.0])
    keep = nms(a, np.array([0.9, 0.8, 0.7]), np.array([1, 1, 1]), iou=0.3)
    assert keep.tolist() == [0, 2]
    keep = nms(a, np.array([0.9, 0.8, 0.7]), np.array([1, 2, 1]), iou=0.3)  # class-wise
    assert keep.tolist() == [0, 1, 2]


# Two tiles side by side, overlapping on x in [80, 100).
TWO = [(0, 0, 100, 100), (80, 0, 180, 100)]


def _merge(rows: list[tuple[float, float, float, float, float, int, int]], tiles=TWO):
    arr = np.array(rows, dtype=float).reshape(-1, 7)
    return merge_tile_detections(arr[:, :4], arr[:, 4], arr[:, 5], arr[:, 6], tiles)


def test_box_cut_by_tile_edge_is_taken_from_the_tile_that_holds_it() -> None:
    # Scratch at x 85..98: tile 0 sees it whole, tile 1 sees it whole too (inside the overlap).
    # Scratch at x 90..110: tile 0 cuts it at x=100, tile 1 holds it whole.
    out = _merge([(90, 40, 100, 50, 0.9, 1, 0), (90, 40, 110, 50, 0.8, 1, 1)])
    np.testing.assert_allclose(out.boxes, [[90, 40, 110, 50]])
    np.testing.assert_allclose(out.scores, [0.8])


def test_duplicates_in_overlap_are_counted_once() -> None:
    out = _merge([(84, 10, 96, 30, 0.7, 1, 0), (85, 10, 96, 31, 0.9, 1, 1)])
    assert len(out) == 1 and out.scores[0] == pytest.approx(0.9)


def test_scratch_longer_than_overlap_is_fused_not_truncated() -> None:
    # Real scratch x 60..120 is longer than the 20 px overlap: each tile sees a cut piece.
    out = _merge([(60, 50, 100, 55, 0.6, 1, 0), (80, 50, 120, 56, 0.8, 1, 1)])
    np.testing.assert_allclose(out.boxes, [[60, 50, 120, 56]])
    np.testing.assert_allclose(out.scores, [0.8])
    # different classes are not fused
    out = _merge([(60, 50, 100, 55, 0.6, 1, 0), (80, 50, 120, 56, 0.8, 2, 1)])
    assert len(out) == 2


def test_box_touching_photo_border_is_kept() -> None:
    # Outer edges (x=0, y=0, y=100, x=180) are not inner: nothing to drop or fuse there.
    rows = [(0, 0, 10, 10, 0.5, 1, 0), (170, 90, 180, 100, 0.6, 1, 1), (40, 95, 60, 100, 0.4, 1, 0)]
    out = _merge(rows)
    assert len(out) == 3


def test_cut_piece_not_held_elsewhere_is_kept() -> None:
    # Tile 1 missed the scratch: tile 0's cut piece (x 70..100) is not inside tile 1 -> kept.
    out = _merge([(70, 20, 100, 30, 0.5, 1, 0)])
    np.testing.assert_allclose(out.boxes, [[70, 20, 100, 30]])


def test_merge_on_full_grid_keeps_separate_scratches() -> None:
    tiles = tile_grid(4608, 3072, 1024, 256)
    # a scratch in the overlap of 4 tiles, reported by all 4: one box remains
    box = [900, 800, 960, 900]
    rows = [(*box, 0.5 + 0.1 * k, 1, t) for k, t in enumerate([0, 1, 6, 7])]
    rows.append((2000, 2500, 2040, 2540, 0.9, 1, 20))
    out = _merge(rows, tiles)
    assert len(out) == 2
    np.testing.assert_allclose(sorted(out.scores), [0.8, 0.9])


def test_merge_empty_and_bad_lengths() -> None:
    out = merge_tile_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0), TWO)
    assert len(out) == 0 and out.boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="lengths differ"):
        merge_tile_detections(np.zeros((2, 4)), np.zeros(1), np.zeros(2), np.zeros(2), TWO)


@pytest.mark.parametrize(
    ("region", "max_side", "overlap", "expected"),
    [
        ((256, 960, 4576, 2304), 2560, 256, [(256, 960, 2544, 2304), (2288, 960, 4576, 2304)]),
        ((10, 20, 110, 70), 2560, 256, [(10, 20, 110, 70)]),
        ((0, 0, 3000, 3000), 2560, 256,
         [(0, 0, 1628, 1628), (1372, 0, 3000, 1628), (0, 1372, 1628, 3000),
          (1372, 1372, 3000, 3000)]),
        ((0, 0, 7000, 100), 2560, 200, [(0, 0, 2467, 100), (2266, 0, 4733, 100),
                                        (4533, 0, 7000, 100)]),
    ],
)
def test_region_pieces_exact(region: tuple, max_side: int, overlap: int, expected: list) -> None:
    pieces = region_pieces(region, max_side, overlap)
    assert pieces == expected
    for x0, y0, x1, y1 in pieces:
        assert x1 - x0 <= max_side and y1 - y0 <= max_side
        assert region[0] <= x0 and region[1] <= y0 and x1 <= region[2] and y1 <= region[3]


def test_region_pieces_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        region_pieces((5, 5, 5, 10), 100)
    with pytest.raises(ValueError, match="overlap"):
        region_pieces((0, 0, 10, 10), 100, 100)
