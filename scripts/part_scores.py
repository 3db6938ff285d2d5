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


def part_scores(run: Path) -> dict[str, tuple[str, bool, float]]:
    """Map file name -> (colour, scratched, score) from a run's ``eval/metrics.json``."""
    path = run / "eval" / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (is the crossval run {run} finished?)")
    photos = json.loads(path.read_text())["part_level"]["photos"]
    return {p["file_name"]: (p["group"], bool(p["scratched"]), float(p["score"])) for p in photos}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    tables = [part_scores(run) for run in args.runs]
    names = sorted(tables[0], key=lambda f: (tables[0][f][0], tables[0][f][1], f))
    width = max(len(Path(f).stem) for f in names)
    print(" " * (width + 16) + " ".join(f"{run.name[-14:]:>14}" for run in args.runs))
    for name in names:
        colour, scratched, _ = tables[0][name]
        kind = "scratched" if scratched else "clean"
        cells = " ".join(f"{t[name][2]:14.3f}" if name in t else f"{'-':>14}" for t in tables)
        print(f"{Path(name).stem:<{width}} {colour:<5} {kind:<9} {cells}")
    for colour in sorted({v[0] for v in tables[0].values()}):
        for label, scratched, pick in (("max clean", False, max), ("min scratched", True, min)):
            values = [
                pick([s for c, k, s in t.values() if c == colour and k == scratched], default=0.0)
                for t in tables
            ]
            cells = " ".join(f"{v:14.3f}" for v in values)
            print(f"{colour + ' ' + label:<{width + 16}}{cells}")


if __name__ == "__main__":
    main()
