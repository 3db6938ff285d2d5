"""The station fixture: an ONNX model exported with torch, and its predictions as reference.

Run in the full (training) venv, before the station tests run in the venv without torch:
``python -m tests.station.fixture OUT_DIR SAMPLE_DIR`` writes ``OUT_DIR/model.onnx`` (an
untrained ``lite0_fpn_fast`` with FPN 16: seeded weights, every box kept) and
``OUT_DIR/reference/results.bbox.json`` (``scratchdet predict`` of three val photos with ONNX
Runtime). The station must reproduce the reference byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

PHOTOS = ("red_DSC_0879.JPG", "white_DSC_0439.JPG", "white_DSC_0440.JPG")


def predict_args(model: Path, sample: Path, out: Path) -> list[str]:
    """The ``scratchdet predict`` arguments both venvs run."""
    return ["predict", str(model), *(str(sample / "val" / p) for p in PHOTOS),
            "--gt", str(sample / "annotations" / "val.json"), "--scale", "0.25",
            "--threads", "2", "--out", str(out), "--quiet", "--force"]


def make_fixture(out: Path, sample: Path) -> Path:
    """Export the model and write the reference predictions; the ``.onnx`` path."""
    import torch
    from typer.testing import CliRunner

    from scratchdet.artifact import ModelSpec
    from scratchdet.cli import app
    from scratchdet.inference.export import export_onnx
    from scratchdet.inference.torch_runtime import build_detector

    torch.manual_seed(0)
    spec = ModelSpec("lite0_fpn_fast", ("scratch",), (1,),
                     {"pretrained": False, "fpn_channels": 16, "score_thresh": 0.0},
                     tile_size=512, tile_overlap=128, threshold=0.3,
                     threshold_source="station fixture")
    model = export_onnx(build_detector(spec), out / "model.onnx", spec, (256, 256))
    result = CliRunner().invoke(app, predict_args(model, sample, out / "reference"))
    if result.exit_code != 0:
        raise RuntimeError(f"reference prediction failed: {result.output}")
    return model


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tests.station.fixture OUT_DIR SAMPLE_DIR")
    print(make_fixture(Path(sys.argv[1]), Path(sys.argv[2])))
