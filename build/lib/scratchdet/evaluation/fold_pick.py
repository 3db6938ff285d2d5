"""The verdict threshold as a station would meet it: picked on other photos than it judges.

``crossval`` picks one threshold on all out-of-fold photo scores and reports its counts on the
same photos: an in-sample figure, optimistic when scratched parts are few. :func:`fold_pick`
picks each fold's threshold on the *other* folds' photos only (:func:`pick_threshold`, the same
target recall) and judges that fold's photos with it, so every verdict counted comes from a
threshold that never saw the photo. ``per_group``: one threshold per subgroup (e.g. part
colour), each picked on the other folds' photos of that subgroup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scratchdet.evaluation.image_level import PhotoScore, ThresholdPoint, pick_threshold, point_at


@dataclass(frozen=True)
class FoldPick:
    """Counts of the fold-wise verdicts and the threshold each fold and group was judged at."""

    target_recall: float
    per_group: bool
    point: ThresholdPoint  # pooled counts; its ``threshold`` is meaningless (nan)
    thresholds: dict[int, dict[str, float]]  # fold -> group ("all" unless per_group) -> t
    notes: tuple[str, ...]

    def describe(self) -> str:
        p = self.point
        how = "per group" if self.per_group else "one for all parts"
        folds = "; ".join(f"fold {k}: " + ", ".join(f"{g} {t:.4g}" for g, t in ts.items())
                          for k, ts in sorted(self.thresholds.items()))
        text = (f"threshold picked on the other folds (recall >= {self.target_recall:g}, {how}):"
                f" catches {p.caught}/{p.scratched} scratched parts, rejects {p.rejected}/"
                f"{p.clean} clean parts ({folds})")
        return text + "".join(f"\n  note: {n}" for n in self.notes)

    def to_dict(self) -> dict[str, object]:
        p = self.point
        return {"target_recall": self.target_recall, "per_group": self.per_group,
                "caught": p.caught, "scratched": p.scratched, "rejected": p.rejected,
                "clean": p.clean,
                "thresholds": {str(k): v for k, v in sorted(self.thresholds.items())},
                "notes": list(self.notes)}


def _threshold(others: Sequence[PhotoScore], target_recall: float) -> tuple[float, str | None]:
    """The pick on ``others``; when unreachable, their lowest detection score (as close to
    the target as a threshold gets) with a note; 1.0 (fail only certain boxes) without any."""
    pick = pick_threshold(others, target_recall)
    if pick.threshold is not None:
        return pick.threshold, None
    positive = [p.score for p in others if p.score > 0]
    return (min(positive) if positive else 1.0), pick.message


def fold_pick(photos: Sequence[PhotoScore], fold_of: Mapping[int, int], target_recall: float,
              per_group: bool = False) -> FoldPick:
    """Judge each fold's photos at a threshold picked on the other folds' photos.

    Args:
        photos: the part-level photo scores (``PartLevelResult.photos``).
        fold_of: image id -> fold; every photo needs one, and there must be >= 2 folds.
        target_recall: as :func:`pick_threshold`.
        per_group: one threshold per ``PhotoScore.group``, picked within that group.

    Raises:
        ValueError: a photo without a fold, or fewer than two folds.
    """
    missing = [p.file_name for p in photos if p.image_id not in fold_of]
    if missing:
        raise ValueError(f"photos without a fold: {', '.join(missing[:5])}")
    folds = sorted({fold_of[p.image_id] for p in photos})
    if len(folds) < 2:
        raise ValueError(f"a fold-wise pick needs >= 2 folds, got {len(folds)}")
    judged: list[ThresholdPoint] = []
    thresholds: dict[int, dict[str, float]] = {}
    notes: list[str] = []
    for k in folds:
        own = [p for p in photos if fold_of[p.image_id] == k]
        others = [p for p in photos if fold_of[p.image_id] != k]
        groups = sorted({p.group for p in own}) if per_group else ["all"]
        thresholds[k] = {}
        for g in groups:
            pool = [p for p in others if not per_group or p.group == g]
            t, note = _threshold(pool, target_recall)
            thresholds[k][g] = t
            if note:
                notes.append(f"fold {k}, {g}: {note}; judged at {t:.4g}")
            judged += [point_at([p for p in own if not per_group or p.group == g], t)]
    point = ThresholdPoint(float("nan"), *(sum(getattr(j, f) for j in judged)
                                           for f in ("caught", "scratched", "rejected", "clean")))
    return FoldPick(target_recall, per_group, point, thresholds, tuple(notes))
