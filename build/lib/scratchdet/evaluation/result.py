"""The typed result of :func:`scratchdet.evaluation.evaluate` and its tables."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from scratchdet.evaluation.bands import SizeBand
from scratchdet.evaluation.image_level import PartLevelResult, ThresholdPoint

ALL_GROUP = "all"


@dataclass(frozen=True)
class GroupSummary:
    """Ground-truth counts of one subgroup: photos, scratched photos, boxes per band."""

    name: str
    images: int
    scratched: int
    boxes: Mapping[str, int]


@dataclass(frozen=True)
class EvaluationResult:
    """AP/AR per (metric, IoU, band, group), plus PR curves and the optional part-level view.

    ``metrics`` keys are ``(metric, iou, band, group)`` with metric ``"AP"``/``"AR"``, iou
    ``"0.50:0.95"``/``"0.50"``/``"0.75"``; values are -1.0 where a band has no GT box.
    """

    bands: tuple[SizeBand, ...]  # "all" first, then the named bands
    groups: tuple[str, ...]  # "all" first, then the subgroup values
    group_by: str | None
    max_dets: int
    metrics: Mapping[tuple[str, str, str, str], float]
    summaries: Mapping[str, GroupSummary]
    recall_grid: tuple[float, ...] = ()
    pr_curves: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # IoU .5, all
    part_level: PartLevelResult | None = None
    source: str = ""

    def value(
        self, metric: str, iou: str = "0.50:0.95", band: str = "all", group: str = ALL_GROUP
    ) -> float:
        """One number, e.g. ``value("AP", "0.50", band="0-40^2", group="red")``."""
        key = (metric, iou, band, group)
        if key not in self.metrics:
            raise KeyError(
                f"no metric {key}; metrics: AP, AR; ious: 0.50:0.95, 0.50, 0.75; "
                f"bands: {', '.join(b.name for b in self.bands)}; groups: {', '.join(self.groups)}"
            )
        return self.metrics[key]

    def rows(self) -> list[tuple[str, str, str]]:
        """The seed's row layout: per metric, IoU 0.50:0.95 on all, then IoU 0.50 per band."""
        rows = []
        for metric in ("AP", "AR"):
            rows.append((metric, "0.50:0.95", self.bands[0].name))
            rows.extend((metric, "0.50", b.name) for b in self.bands)
        return rows

    def table_rows(self) -> list[list[str]]:
        """Header + rows of formatted cells (3 decimals)."""
        out = [["metric", "IoU", "area", *self.groups]]
        for metric, iou, band in self.rows():
            cells = [f"{self.value(metric, iou, band, g):.3f}" for g in self.groups]
            out.append([metric, iou, band, *cells])
        return out

    def table_markdown(self) -> str:
        """The metrics table as GitHub markdown."""
        rows = self.table_rows()
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines) + "\n"

    def table_text(self) -> str:
        """The metrics table aligned for a terminal."""
        return format_text_table(self.table_rows())

    def table_csv(self) -> str:
        """The metrics table as CSV (unrounded values)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["metric", "iou", "area", *self.groups])
        for metric, iou, band in self.rows():
            writer.writerow([metric, iou, band, *(self.value(metric, iou, band, g)
                                                  for g in self.groups)])
        return buf.getvalue()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResult:
        """Rebuild from :meth:`to_dict` output (e.g. an evaluation folder's metrics.json)."""
        part = data.get("part_level")
        return cls(
            bands=tuple(SizeBand(**b) for b in data["bands"]),
            groups=tuple(data["groups"]),
            group_by=data["group_by"],
            max_dets=int(data["max_dets"]),
            metrics={(m["metric"], m["iou"], m["band"], m["group"]): float(m["value"])
                     for m in data["metrics"]},
            summaries={k: GroupSummary(**s) for k, s in data["summaries"].items()},
            recall_grid=tuple(data["pr_curves"]["recall"]),
            pr_curves={g: tuple(c) for g, c in data["pr_curves"]["precision"].items()},
            part_level=PartLevelResult.from_dict(part) if part else None,
            source=data.get("source", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: settings, every metric, summaries, PR curves, part level."""
        return {
            "source": self.source,
            "max_dets": self.max_dets,
            "group_by": self.group_by,
            "groups": list(self.groups),
            "bands": [asdict(b) for b in self.bands],
            "metrics": [
                {"metric": m, "iou": i, "band": b, "group": g, "value": v}
                for (m, i, b, g), v in self.metrics.items()
            ],
            "table": self.table_rows(),
            "summaries": {k: asdict(s) for k, s in self.summaries.items()},
            "pr_curves": {"iou": 0.5, "band": self.bands[0].name,
                          "recall": list(self.recall_grid),
                          "precision": {g: list(c) for g, c in self.pr_curves.items()}},
            "part_level": self.part_level.to_dict() if self.part_level else None,
        }


def format_text_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first columns, right-aligned numbers, a rule under the header."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]

    def fmt(row: Sequence[str]) -> str:
        cells = [cell.ljust(w) if c < 3 else cell.rjust(w)
                 for c, (cell, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(rows[0]), rule, *(fmt(r) for r in rows[1:])]) + "\n"


def part_level_rows(
    part: PartLevelResult, thresholds: Sequence[float], groups: Sequence[str]
) -> list[list[str]]:
    """Header + one row per threshold: caught/scratched and rejected/clean per group."""
    header = ["threshold"]
    for g in groups:
        header += [f"{g}: scratched caught", f"{g}: clean rejected"]
    rows = [header]
    for t in thresholds:
        row = [f"{t:.2f}"]
        for g in groups:
            p: ThresholdPoint = part.at(t, g)
            row += [_share(p.caught, p.scratched), _share(p.rejected, p.clean)]
        rows.append(row)
    return rows


def _share(n: int, d: int) -> str:
    return f"{n}/{d} ({n / d:.3f})" if d else f"{n}/0"


def part_level_text(part: PartLevelResult, thresholds: Sequence[float]) -> str:
    """AUROC per group, the threshold table, notes and target picks, for a terminal."""
    groups = list(part.groups)
    lines = ["Part level (photo score = highest detection score; rejected when score >= t)"]
    lines += [f"  AUROC {g}: " + (f"{pg.auroc:.3f}" if pg.auroc is not None else "undefined")
              + f"  ({pg.scratched} scratched, {pg.clean} clean)"
              for g, pg in part.groups.items()]
    lines.append("")
    rows = part_level_rows(part, thresholds, groups)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for i, r in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for pg in part.groups.values():
        lines += [f"note: {n}" for n in pg.notes]
        if pg.target is not None:
            lines.append(f"target {pg.name}: {pg.target.message}")
    pick = part.groups["all"].target
    if pick is not None and pick.threshold is not None and len(groups) > 1:
        lines.append(f"at the 'all' pick {pick.threshold:.4g}, per subgroup:")
        lines += [f"  {g}: {part.at(pick.threshold, g).describe()}" for g in groups[1:]]
    return "\n".join(lines) + "\n"
