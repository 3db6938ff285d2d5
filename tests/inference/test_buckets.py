"""ShapeBuckets: inputs batched by padded shape, exact tables."""

from __future__ import annotations

import pytest

from scratchdet.inference.buckets import ShapeBuckets, bucket_of


@pytest.mark.parametrize(("size", "multiple", "want"), [
    ((1, 1), 256, (256, 256)),
    ((256, 256), 256, (256, 256)),
    ((257, 100), 256, (256, 512)),
    ((2224, 1344), 256, (1536, 2304)),
    ((2224, 1344), 512, (1536, 2560)),
    ((608, 576), 32, (576, 608)),
])
def test_bucket_is_height_width_rounded_up(size: tuple[int, int], multiple: int,
                                           want: tuple[int, int]) -> None:
    assert bucket_of(*size, multiple) == want


def test_bucket_refuses_empty_sizes() -> None:
    with pytest.raises(ValueError, match="0x5"):
        bucket_of(0, 5, 32)


def test_a_bucket_leaves_when_full_and_keeps_its_order() -> None:
    b: ShapeBuckets[str] = ShapeBuckets(batch_size=2, multiple=256)
    assert b.add("a", 300, 300) is None  # bucket (512, 512)
    assert b.add("b", 100, 100) is None  # (256, 256)
    assert b.add("c", 500, 260) == ["a", "c"]  # (512, 512) is full
    assert len(b) == 1
    assert b.add("d", 256, 1) == ["b", "d"]
    assert len(b) == 0


def test_pop_oldest_and_drain_go_by_first_arrival() -> None:
    b: ShapeBuckets[int] = ShapeBuckets(batch_size=3, multiple=100)
    for item, size in [(1, 150), (2, 50), (3, 250), (4, 160), (5, 60)]:
        assert b.add(item, size, size) is None
    assert b.pop_oldest() == [1, 4]  # (200, 200) holds the first item
    assert list(b.drain()) == [[2, 5], [3]]
    assert len(b) == 0
    with pytest.raises(IndexError):
        b.pop_oldest()


def test_one_huge_multiple_is_first_come_first_served() -> None:
    b: ShapeBuckets[int] = ShapeBuckets(batch_size=2, multiple=1 << 30)
    assert b.add(1, 10, 4000) is None
    assert b.add(2, 3000, 20) == [1, 2]
