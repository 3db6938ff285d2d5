"""Prepare what a GPU check carries to a lent device machine (at most 64 MiB in all).

    python scripts/gpu/payload.py MODEL.pt [--photos N] [--out .gpu]

Writes ``.gpu/model.pt`` (the model's weights stored in float16 for the transfer; loaded back
into float32 networks) and ``.gpu/photos/`` (N of the sample's val photos, red and white
alternating), and prints the size. Pydantic does not come with the device image: download
its wheels into ``.whl`` as the device tool's README says (pydantic, pydantic_core,
annotated-types, typing-inspection, typing_extensions for Python 3.12), then run
``scripts/gpu/check.sh`` there with ``carry: [".gpu", ".whl"]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from scratchdet.artifact import read_checkpoint, save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path(".gpu"))
    parser.add_argument("--sample", type=Path,
                        default=Path(os.environ.get("SCRATCHDET_SAMPLE", "data/scratch-sample")))
    args = parser.parse_args()
    state, spec, _ = read_checkpoint(args.model)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(args.out / "model.pt", half, spec)
    photos = args.out / "photos"
    shutil.rmtree(photos, ignore_errors=True)
    photos.mkdir()
    red = sorted((args.sample / "val").glob("red_*"))
    white = sorted((args.sample / "val").glob("white_*"))
    chosen = [p for pair in zip(red, white, strict=False) for p in pair][: args.photos]
    for p in chosen:
        shutil.copy(p, photos / p.name)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{args.out}: model + {len(chosen)} photos, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
