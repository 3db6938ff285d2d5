"""Model inputs grouped by padded shape, so that a stream of differently sized inputs makes
batches of few distinct shapes.

A convolution library tuned per input shape (cuDNN's autotuner) pays its tuning once per new
shape; batches formed first come, first served have a new padded shape almost every time
(the largest input of each batch sets it), so the tuning never pays off. :class:`ShapeBuckets`
keeps one queue per padded shape (each side rounded up to ``multiple``): a queue leaves as a
batch when it holds ``batch_size`` inputs, and a caller that cannot wait any longer takes the
queue holding the oldest input (:meth:`ShapeBuckets.pop_oldest`) or all of them at the end
(:meth:`ShapeBuckets.drain`). With every batch padded to ``batch_size`` inputs, the shapes the
model sees are exactly the buckets met so far: at most ``(longest side / multiple)^2``.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Generic, TypeVar

T = TypeVar("T")


def bucket_of(width: int, height: int, multiple: int) -> tuple[int, int]:
    """``(height, width)`` each rounded up to a multiple of ``multiple``: the padded shape of an
    input of that size."""
    if width < 1 or height < 1 or multiple < 1:
        raise ValueError(f"need a positive size and multiple, got {width}x{height}, {multiple}")
    return (-(-height // multiple) * multiple, -(-width // multiple) * multiple)


class ShapeBuckets(Generic[T]):
    """Items queued by the padded shape of their size; first in, first out within a shape."""

    def __init__(self, batch_size: int, multiple: int) -> None:
        if batch_size < 1 or multiple < 1:
            raise ValueError(f"batch_size and multiple must be >= 1, got {batch_size}, {multiple}")
        self.batch_size, self.multiple = batch_size, multiple
        self._queues: dict[tuple[int, int], list[tuple[int, T]]] = {}
        self._order = count()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def add(self, item: T, width: int, height: int) -> list[T] | None:
        """Queue ``item`` (an input of ``width`` x ``height``); its shape's batch when that is
        now full, else ``None``."""
        key = bucket_of(width, height, self.multiple)
        queue = self._queues.setdefault(key, [])
        queue.append((next(self._order), item))
        if len(queue) < self.batch_size:
            return None
        del self._queues[key]
        return [it for _, it in queue]

    def pop_oldest(self) -> list[T]:
        """The (partial) batch of the shape whose first item came in earliest."""
        if not self._queues:
            raise IndexError("no items queued")
        key = min(self._queues, key=lambda k: self._queues[k][0][0])
        return [it for _, it in self._queues.pop(key)]

    def drain(self) -> Iterator[list[T]]:
        """Every queued batch, oldest first; empty afterwards."""
        while self._queues:
            yield self.pop_oldest()
