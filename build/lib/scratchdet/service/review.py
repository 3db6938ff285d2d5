"""What operators' decisions say about an inspected photo: its labels for training.

Decisions are only ever added (``POST /v1/inspections/{id}/decisions``); read oldest first:

- ``confirm`` (boxes: the detections the operator saw and confirmed; none confirms a clean
  part) and ``false_alarm`` (no box: the part has no scratch where the detector said) judge
  the detections; the latest judgement counts.
- ``missed`` adds the boxes the operator drew around scratches the detector did not report;
  every ``missed`` decision counts.

The labels are the judged boxes plus every drawn box. An inspection without any decision is
``unreviewed``; one with only drawn boxes while the detector kept boxes nobody judged is
``incomplete`` (those boxes may be scratches: it is not used for training). Boxes are
``[x1, y1, x2, y2]`` in the photo's original pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

ReviewState = Literal["unreviewed", "incomplete", "clean", "scratched"]
#: The most boxes one decision may name.
MAX_DECISION_BOXES = 100


class DecisionLike(Protocol):
    kind: str
    boxes: list[list[float]]


@dataclass(frozen=True)
class Review:
    """An inspection's state after its decisions, and the labels of its photo."""

    state: ReviewState
    boxes: list[list[float]]

    @property
    def usable(self) -> bool:
        """True when the photo can become training data (clean or with labels)."""
        return self.state in ("clean", "scratched")


def review_of(kept_boxes: Sequence[Sequence[float]],
              decisions: Sequence[DecisionLike]) -> Review:
    """The review of an inspection whose detector kept ``kept_boxes``, from its
    ``decisions`` (oldest first)."""
    if not decisions:
        return Review("unreviewed", [])
    judged: list[list[float]] | None = None
    drawn: list[list[float]] = []
    for decision in decisions:
        if decision.kind == "missed":
            drawn.extend(list(box) for box in decision.boxes)
        else:
            judged = [list(box) for box in decision.boxes]
    if judged is None:
        if kept_boxes:
            return Review("incomplete", drawn)
        judged = []
    labels = judged + drawn
    return Review("scratched" if labels else "clean", labels)


def box_problem(box: object, width: int, height: int) -> str | None:
    """What is wrong with a decision's box on a ``width`` x ``height`` photo, or None when it
    is 4 finite numbers with ``0 <= x1 < x2 <= width`` and ``0 <= y1 < y2 <= height``."""
    if (not isinstance(box, list | tuple) or len(box) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)):
        return f"box {box!r}: expected [x1, y1, x2, y2] numbers"
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return f"box {list(box)}: not finite"
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        return (f"box {list(box)}: expected 0 <= x1 < x2 <= {width} and "
                f"0 <= y1 < y2 <= {height} (the photo's pixels)")
    return None
