"""Each photo's part score (its best box) side by side across finished crossval runs.

    python scripts/part_scores.py docs/runs/cv-s111-rf docs/runs/cv-s111-rf-e64 [RUN ...]

Reads ``eval/metrics.json`` (``part_level``) of each run, prints one row per photo sorted by
colour, then clean before scratched, with the score each run gave it, and per run the
highest clean score and the lowest scratched score of each colour: where a one-threshold
verdict breaks. No model is loaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scratchdet.evaluation.image_level import PartLevelResult, PhotoScore


def part_scores(run: Path) -> dict[str, PhotoScore]:
    """Map file name -> its part-level photo from a run's ``eval/metrics.json``."""
    path = run / "eval" / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (is the crossval run {run} finished?)")
    part = PartLevelResult.from_dict(json.loads(path.read_text())["part_level"])
    return {p.file_name: p for p in part.photos}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    tables = [part_scores(run) for run in args.runs]
    first = tables[0]
    names = sorted(first, key=lambda f: (first[f].group, first[f].scratched, f))
    width = max(len(Path(f).stem) for f in names) + 16
    print(" " * width + " ".join(f"{run.name[-14:]:>14}" for run in args.runs))
    for name in names:
        kind = "scratched" if first[name].scratched else "clean"
        cells = " ".join(f"{t[name].score:14.3f}" if name in t else f"{'-':>14}" for t in tables)
        print(f"{Path(name).stem + ' ' + first[name].group:<{width - 10}} {kind:<9} {cells}")
    for colour in sorted({p.group for p in first.values()}):
        for label, scratched, pick in (("max clean", False, max), ("min scratched", True, min)):
            values = [
                pick((p.score for p in t.values() if (p.group, p.scratched) == (colour, scratched)),
                     default=0.0)
                for t in tables
            ]
            print(f"{colour + ' ' + label:<{width}}" + " ".join(f"{v:14.3f}" for v in values))


if __name__ == "__main__":
    main()
