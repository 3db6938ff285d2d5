"""Shared fixtures. The real sample is found through $SCRATCHDET_SAMPLE (see README)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scratchdet.settings import SAMPLE_ENV, sample_dir


@pytest.fixture(scope="session")
def sample() -> Path:
    """The scratch sample folder; tests that need it are skipped with a reason when absent.

    In CI ``.ci/run`` sets $SCRATCHDET_SAMPLE, and ``SCRATCHDET_REQUIRE_SAMPLE=1`` turns a
    missing sample into a failure instead of a skip.
    """
    import os

    path = sample_dir()
    if not (path / "annotations" / "train.json").is_file():
        if os.environ.get("SCRATCHDET_REQUIRE_SAMPLE") == "1":
            pytest.fail(f"sample not found at {path} (set ${SAMPLE_ENV})")
        pytest.skip(f"sample not found at {path}; set ${SAMPLE_ENV}")
    return path


@pytest.fixture()
def sample_subset(sample: Path, tmp_path: Path) -> Callable[[dict[str, tuple[str, ...]]], Path]:
    """Make a copy of the sample layout under tmp_path with only the given photos present:
    ``sample_subset({"train": (name,), "val": (...)})`` (symlinks to the sample's files)."""

    def make(photos: dict[str, tuple[str, ...]]) -> Path:
        root = tmp_path / "sample"
        root.mkdir()
        (root / "annotations").symlink_to(sample / "annotations")
        for split, names in photos.items():
            (root / split).mkdir()
            for name in names:
                (root / split / name).symlink_to(sample / split / name)
        return root

    return make


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained lite0_fpn_fast (FPN 16, every score kept) saved as ``model.pt`` (skips
    where torch is not installed: the station venv)."""
    torch = pytest.importorskip("torch")

    from scratchdet.artifact import ModelSpec, save_model
    from scratchdet.inference.torch_runtime import build_detector

    torch.manual_seed(0)
    overrides = {"pretrained": False, "fpn_channels": 16, "score_thresh": 0.0}
    spec = ModelSpec("lite0_fpn_fast", ("scratch",), (1,), overrides, tile_size=512,
                     tile_overlap=128)
    model = build_detector(spec)
    return save_model(tmp_path_factory.mktemp("model") / "model.pt", model.state_dict(), spec)
