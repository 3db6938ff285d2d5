"""Dataset statistics: photos per split and colour (scratched/clean), boxes, box sizes.

``compute_stats`` returns a typed :class:`DatasetStats`; ``format_summary`` gives the text
table, ``write_stats`` writes ``stats.md``, ``stats.json`` and two PNG histograms of the box
size ``sqrt(w * h)`` in pixels of the original photo.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scratchdet.data.records import DEFAULT_COLOURS, Dataset, ImageRecord
from scratchdet.io import write_text_atomic


@dataclass(frozen=True)
class GroupCount:
    """Photos (scratched + clean) and boxes of one group."""

    photos: int
    scratched: int
    clean: int
    boxes: int


@dataclass(frozen=True)
class SplitStats:
    """Counts of one split, per colour and in total, and every box size ``sqrt(w*h)``."""

    name: str
    by_colour: dict[str, GroupCount]
    total: GroupCount
    box_sizes: dict[str, tuple[float, ...]]  # colour -> sizes


@dataclass(frozen=True)
class DatasetStats:
    """``splits``: every photo in the jsons; ``present``: only photos found on disk (None when
    no image folder was given)."""

    splits: tuple[SplitStats, ...]
    present: tuple[SplitStats, ...] | None
    colours: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Counts and box-size quantiles (not every size) as plain JSON-ready data."""

        def one(s: SplitStats) -> dict[str, Any]:
            sizes = [v for vs in s.box_sizes.values() for v in vs]
            return {
                "name": s.name,
                "by_colour": {c: asdict(g) for c, g in s.by_colour.items()},
                "total": asdict(s.total),
                "box_size": _quantiles(sizes),
            }

        return {
            "colours": list(self.colours),
            "splits": [one(s) for s in self.splits],
            "present": None if self.present is None else [one(s) for s in self.present],
        }


@dataclass(frozen=True)
class StatsFiles:
    """Paths written by :func:`write_stats`."""

    markdown: Path
    json: Path
    plots: tuple[Path, ...]


def _quantiles(sizes: Sequence[float]) -> dict[str, float] | None:
    if not sizes:
        return None
    qs = statistics.quantiles(sizes, n=4) if len(sizes) > 1 else [sizes[0]] * 3
    return {"min": min(sizes), "q1": qs[0], "median": qs[1], "q3": qs[2], "max": max(sizes)}


def _count(records: Sequence[ImageRecord]) -> GroupCount:
    scratched = sum(1 for r in records if r.scratched)
    boxes = sum(len(r.boxes) for r in records)
    return GroupCount(len(records), scratched, len(records) - scratched, boxes)


def split_stats(name: str, records: Sequence[ImageRecord], colours: Sequence[str]) -> SplitStats:
    """Stats of one split's records; ``colours`` fixes the order (other colours follow)."""
    order = list(colours) + sorted({r.colour for r in records} - set(colours))
    by_colour = {c: [r for r in records if r.colour == c] for c in order}
    sizes = {c: tuple(b.area**0.5 for r in rs for b in r.boxes) for c, rs in by_colour.items()}
    return SplitStats(name, {c: _count(rs) for c, rs in by_colour.items()}, _count(records), sizes)


def compute_stats(
    datasets: Mapping[str, Dataset], colours: Sequence[str] = DEFAULT_COLOURS
) -> DatasetStats:
    """Stats of named splits (e.g. ``{"train": load_coco_records(...), ...}``).

    The ``present`` table is filled when the datasets were loaded with an image folder.
    """
    splits = tuple(split_stats(n, d.images, colours) for n, d in datasets.items())
    with_folder = any(d.image_dir is not None for d in datasets.values())
    present = (
        tuple(split_stats(n, d.present, colours) for n, d in datasets.items())
        if with_folder
        else None
    )
    seen = {c for s in splits for c in s.by_colour}
    order = tuple(colours) + tuple(sorted(seen - set(colours)))
    return DatasetStats(splits, present, order)


def _line(s: SplitStats) -> str:
    groups = ", ".join(
        f"{c} {g.photos} ({g.scratched}/{g.clean})" for c, g in s.by_colour.items() if g.photos
    )
    return f"{s.name} {groups or 'no photos'}"


def format_summary(stats: DatasetStats) -> str:
    """Text table: ``train white 463 (315/148), red 424 (180/244); ...`` and box counts."""
    out = ["photos per split and colour: photos (scratched/clean)"]

    def block(title: str, splits: Sequence[SplitStats]) -> None:
        out.append(title)
        out.append("  " + "; ".join(_line(s) for s in splits))
        boxes = " / ".join(str(s.total.boxes) for s in splits)
        out.append(f"  boxes {boxes} ({' / '.join(s.name for s in splits)})")

    block("all photos in the annotations:", stats.splits)
    if stats.present is not None:
        block("photos present on disk:", stats.present)
    return "\n".join(out)


def _markdown_table(splits: Sequence[SplitStats]) -> list[str]:
    rows = ["| split | colour | photos | scratched | clean | boxes | median box size (px) |"]
    rows.append("|---|---|---:|---:|---:|---:|---:|")
    for s in splits:
        for c, g in [*s.by_colour.items(), ("all", s.total)]:
            sizes = s.box_sizes.get(c) if c != "all" else sum(s.box_sizes.values(), ())
            med = f"{statistics.median(sizes):.0f}" if sizes else "-"
            rows.append(
                f"| {s.name} | {c} | {g.photos} | {g.scratched} | {g.clean} | {g.boxes} | {med} |"
            )
    return rows


def format_markdown(stats: DatasetStats, plots: Sequence[str] = ()) -> str:
    """The stats as a markdown document (tables; plot links when given)."""
    lines = ["# Dataset statistics", "", "## All photos in the annotations", ""]
    lines += _markdown_table(stats.splits)
    if stats.present is not None:
        lines += ["", "## Photos present on disk", ""]
        lines += _markdown_table(stats.present)
    if plots:
        lines += ["", "## Box size sqrt(w * h), pixels of the original photo", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def plot_box_sizes(stats: DatasetStats, out_dir: Path) -> tuple[Path, ...]:
    """Histograms of box size per split and per colour (all splits pooled), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_sizes = [v for s in stats.splits for vs in s.box_sizes.values() for v in vs]
    top = max(all_sizes, default=1.0)
    bins = [top * i / 40 for i in range(41)]
    per_split = {s.name: [v for vs in s.box_sizes.values() for v in vs] for s in stats.splits}
    per_colour = {
        c: [v for s in stats.splits for v in s.box_sizes.get(c, ())] for c in stats.colours
    }
    written = []
    for fname, groups, title in (
        ("box_size_by_split.png", per_split, "per split"),
        ("box_size_by_colour.png", per_colour, "per colour, all splits"),
    ):
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, sizes in groups.items():
            if sizes:
                ax.hist(
                    sizes,
                    bins=bins,
                    weights=[1 / len(sizes)] * len(sizes),
                    histtype="step",
                    linewidth=1.5,
                    label=f"{label} ({len(sizes)} boxes)",
                )
        ylabel = "fraction of the group's boxes"
        ax.set(xlabel="sqrt(box area), px", ylabel=ylabel, title=f"Box size {title}")
        ax.legend()
        fig.tight_layout()
        tmp = out_dir / f".{fname}.part.png"
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(out_dir / fname)
        written.append(out_dir / fname)
    return tuple(written)


def write_stats(stats: DatasetStats, out_dir: str | Path, plots: bool = True) -> StatsFiles:
    """Write ``stats.md``, ``stats.json`` and (``plots``) the PNG histograms into ``out_dir``.

    Existing files of these names are replaced (atomically); nothing else is touched.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs = plot_box_sizes(stats, out) if plots else ()
    md = write_text_atomic(
        out / "stats.md", format_markdown(stats, [p.name for p in pngs]), force=True
    )
    js = write_text_atomic(
        out / "stats.json", json.dumps(stats.to_dict(), indent=2) + "\n", force=True
    )
    return StatsFiles(md, js, pngs)
