"""Part-level view: is this part scratched? One score per photo.

A photo's score is its highest detection score (0 when it has none); a photo is scratched
when it has at least one ground-truth box. A part is *rejected* at threshold ``t`` when its
score is ``>= t``. AUROC is rank based (Mann-Whitney U) with average ranks for ties, so a
scratched and a clean photo with the same score count one half.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from scratchdet.structures import verdict


@dataclass(frozen=True)
class PhotoScore:
    """One photo of the part-level view."""

    image_id: int
    file_name: str
    score: float
    scratched: bool
    group: str


@dataclass(frozen=True)
class ThresholdPoint:
    """Counts at one threshold: scratched parts caught and clean parts rejected."""

    threshold: float
    caught: int
    scratched: int
    rejected: int
    clean: int

    @property
    def recall(self) -> float | None:
        return self.caught / self.scratched if self.scratched else None

    @property
    def false_reject_rate(self) -> float | None:
        return self.rejected / self.clean if self.clean else None

    def describe(self) -> str:
        def share(n: int, d: int) -> str:
            return f"{n}/{d} ({n / d:.3f})" if d else f"{n}/0 (undefined)"

        return (f"threshold {self.threshold:.4g}: catches {share(self.caught, self.scratched)} "
                f"scratched parts, rejects {share(self.rejected, self.clean)} clean parts")


@dataclass(frozen=True)
class TargetPick:
    """The highest threshold reaching a target recall, or why there is none."""

    target_recall: float
    point: ThresholdPoint | None
    message: str

    @property
    def threshold(self) -> float | None:
        return self.point.threshold if self.point else None


@dataclass(frozen=True)
class PartGroup:
    """Part-level numbers of one subgroup."""

    name: str
    scratched: int
    clean: int
    auroc: float | None
    notes: tuple[str, ...]
    curve: tuple[ThresholdPoint, ...]  # one point per distinct positive score, descending
    target: TargetPick | None = None


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (``[1, 5, 5, 9]`` -> 1, 2.5, 2.5, 4)."""
    arr = np.asarray(values, dtype=float)
    order = np.argsort(arr, kind="mergesort")
    ranks = np.empty(len(arr), dtype=float)
    sorted_vals = arr[order]
    start = 0
    while start < len(arr):
        end = start
        while end + 1 < len(arr) and sorted_vals[end + 1] == sorted_vals[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve by average ranks; None when a class is empty."""
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(scores)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def point_at(photos: Iterable[PhotoScore], threshold: float) -> ThresholdPoint:
    """Counts for ``photos`` when parts are judged by the verdict rule at ``threshold``."""
    caught = scratched = rejected = clean = 0
    for p in photos:
        hit = verdict(p.score, threshold) == "fail"
        if p.scratched:
            scratched += 1
            caught += hit
        else:
            clean += 1
            rejected += hit
    return ThresholdPoint(float(threshold), caught, scratched, rejected, clean)


def pick_threshold(photos: Sequence[PhotoScore], target_recall: float) -> TargetPick:
    """The highest threshold whose recall on ``photos`` reaches ``target_recall``."""
    if not 0 < target_recall <= 1:
        raise ValueError(f"target recall must be in (0, 1], got {target_recall}")
    n_scratched = sum(p.scratched for p in photos)
    if n_scratched == 0:
        return TargetPick(target_recall, None,
                          "no scratched photos: recall is undefined, no threshold picked")
    candidates = sorted({p.score for p in photos if p.score > 0}, reverse=True)
    if not candidates:
        return TargetPick(target_recall, None,
                          "no detections on any photo: no threshold can catch a scratched part")
    for t in candidates:
        point = point_at(photos, t)
        if point.caught >= target_recall * n_scratched - 1e-9:
            cost = (f"{point.rejected}/{point.clean} ({point.rejected / point.clean:.3f}) clean "
                    "parts falsely rejected" if point.clean else "unknown (no clean photos)")
            return TargetPick(
                target_recall, point,
                f"highest threshold with recall >= {target_recall:g} is {t:.4g}: catches "
                f"{point.caught}/{n_scratched} ({point.recall:.3f}) scratched parts; cost: {cost}",
            )
    low = point_at(photos, candidates[-1])
    return TargetPick(
        target_recall, None,
        f"recall {target_recall:g} not reachable: even at the lowest detection score "
        f"({candidates[-1]:.4g}) only {low.caught}/{n_scratched} scratched parts are caught; "
        f"{n_scratched - low.caught} without any detection",
    )


def _notes(photos: Sequence[PhotoScore], group: str) -> tuple[str, ...]:
    notes = []
    if not any(p.scratched for p in photos):
        notes.append(f"{group}: no scratched photos, AUROC and recall are undefined")
    if all(p.scratched for p in photos):
        notes.append(f"{group}: no clean photos, AUROC and false-reject rate are undefined")
    if photos and all(p.score <= 0 for p in photos):
        notes.append(f"{group}: no detections, every photo scores 0 (a tie: AUROC 0.5 when "
                     "defined); no threshold separates scratched from clean")
    return tuple(notes)


def part_group(
    name: str, photos: Sequence[PhotoScore], target_recall: float | None = None
) -> PartGroup:
    """AUROC, the threshold curve and (optionally) the target pick of one subgroup."""
    scores = [p.score for p in photos]
    labels = [p.scratched for p in photos]
    curve = tuple(point_at(photos, t) for t in sorted({s for s in scores if s > 0}, reverse=True))
    target = pick_threshold(photos, target_recall) if target_recall is not None else None
    return PartGroup(name, sum(labels), len(labels) - sum(labels), auroc(scores, labels),
                     _notes(photos, name), curve, target)


@dataclass(frozen=True)
class PartLevelResult:
    """The part-level view for ``"all"`` and each subgroup."""

    photos: tuple[PhotoScore, ...]
    groups: Mapping[str, PartGroup]

    def at(self, threshold: float, group: str = "all") -> ThresholdPoint:
        """Counts at ``threshold`` for one subgroup (``"all"``: every photo)."""
        if group != "all" and group not in self.groups:
            raise KeyError(f"unknown group '{group}'; valid: {', '.join(self.groups)}")
        return point_at([p for p in self.photos if group in ("all", p.group)], threshold)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartLevelResult:
        """Rebuild from :meth:`to_dict` output (e.g. an evaluation folder's metrics.json)."""

        def pick(t: Mapping[str, Any] | None) -> TargetPick | None:
            if t is None:
                return None
            point = ThresholdPoint(**t["point"]) if t["point"] else None
            return TargetPick(t["target_recall"], point, t["message"])

        photos = tuple(PhotoScore(**p) for p in data["photos"])
        groups = {
            name: PartGroup(name, g["scratched"], g["clean"], g["auroc"], tuple(g["notes"]),
                            tuple(ThresholdPoint(**c) for c in g["curve"]), pick(g["target"]))
            for name, g in data["groups"].items()
        }
        return cls(photos, groups)

    def to_dict(self) -> dict[str, Any]:
        def pick(t: TargetPick | None) -> dict[str, Any] | None:
            if t is None:
                return None
            return {"target_recall": t.target_recall, "threshold": t.threshold,
                    "point": asdict(t.point) if t.point else None, "message": t.message}

        return {
            "photos": [asdict(p) for p in self.photos],
            "groups": {
                name: {"scratched": g.scratched, "clean": g.clean, "auroc": g.auroc,
                       "notes": list(g.notes), "curve": [asdict(c) for c in g.curve],
                       "target": pick(g.target)}
                for name, g in self.groups.items()
            },
        }


def part_level(
    scores: Mapping[int, float],
    scratched: Mapping[int, bool],
    groups: Mapping[int, str],
    file_names: Mapping[int, str],
    group_order: Sequence[str],
    target_recall: float | None = None,
) -> PartLevelResult:
    """Build the part-level view from per-photo max scores, labels and group names."""
    photos = tuple(
        PhotoScore(i, file_names.get(i, str(i)), float(scores.get(i, 0.0)), bool(scratched[i]),
                   groups.get(i, "all"))
        for i in sorted(scratched)
    )
    result = {"all": part_group("all", photos, target_recall)}
    for name in group_order:
        if name != "all":
            members = [p for p in photos if p.group == name]
            result[name] = part_group(name, members, target_recall)
    return PartLevelResult(photos, result)


def photo_max_scores(detections: Iterable[Mapping[str, Any]]) -> dict[int, float]:
    """Highest detection score per image id (photos without detections are absent)."""
    best: dict[int, float] = {}
    for det in detections:
        i = int(det["image_id"])
        best[i] = max(best.get(i, 0.0), float(det["score"]))
    return best
