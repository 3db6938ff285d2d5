"""Dataset statistics: photos per split and colour (scratched/clean), boxes, box sizes.

``compute_stats`` returns a typed :class:`DatasetStats` (it refuses a box that is not 4 finite
numbers with w, h > 0); ``format_summary`` gives the text table, ``write_stats`` writes
``stats.md``, ``stats.json`` (standard JSON: no NaN) and two PNG histograms of the box size
``sqrt(w * h)`` in pixels of the original photo, all rendered before the first is written.
"""

from __future__ import annotations

import io
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scratchdet.data.records import (
    DEFAULT_COLOURS,
    Dataset,
    DatasetError,
    ImageRecord,
    bbox_problem,
)
from scratchdet.io import write_bytes_atomic, write_text_atomic


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

    Raises:
        DatasetError: a box is not 4 finite numbers with w, h > 0 (names split, box, photo).
    """
    for name, dataset in datasets.items():
        for rec in dataset.images:
            for box in rec.boxes:
                problem = bbox_problem(box.bbox)
                if problem is not None:
                    where = dataset.source or name
                    raise DatasetError(f"{where}: annotation id {box.id} (image id {rec.id} "
                                       f"'{rec.file_name}'): {problem}")
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


def _finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    return value


def stats_json(stats: DatasetStats) -> str:
    """``stats.json``'s text: strict JSON, a value that is not finite written as null."""
    return json.dumps(_finite_or_none(stats.to_dict()), indent=2, allow_nan=False) + "\n"


def render_box_size_plots(stats: DatasetStats) -> dict[str, bytes]:
    """PNG histograms of box size per split and per colour (all splits pooled), by file name."""
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
    rendered = {}
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
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        rendered[fname] = buf.getvalue()
    return rendered


def plot_box_sizes(stats: DatasetStats, out_dir: Path) -> tuple[Path, ...]:
    """Write the histograms of :func:`render_box_size_plots` into ``out_dir`` (atomically)."""
    rendered = render_box_size_plots(stats)
    return tuple(write_bytes_atomic(out_dir / n, b, force=True) for n, b in rendered.items())


def write_stats(stats: DatasetStats, out_dir: str | Path, plots: bool = True) -> StatsFiles:
    """Write ``stats.md``, ``stats.json`` and (``plots``) the PNG histograms into ``out_dir``.

    Everything is rendered first, so an error leaves ``out_dir`` untouched (not even
    created); each file is then replaced atomically; nothing else is touched.
    """
    out = Path(out_dir)
    pngs = render_box_size_plots(stats) if plots else {}
    markdown = format_markdown(stats, list(pngs))
    text = stats_json(stats)
    out.mkdir(parents=True, exist_ok=True)
    written = tuple(write_bytes_atomic(out / n, b, force=True) for n, b in pngs.items())
    md = write_text_atomic(out / "stats.md", markdown, force=True)
    js = write_text_atomic(out / "stats.json", text, force=True)
    return StatsFiles(md, js, written)
