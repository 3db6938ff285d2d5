"""``scratchdet predict --ray``: a local Ray instance (2 CPUs) gives the single-process outputs,
and a killed run resumes without redoing a shard.

Skipped where Ray (the ``ray`` extra) is not installed, unless ``SCRATCHDET_REQUIRE_RAY=1``
(set by ``.ci/run``, which installs it), where that is a failure.
"""

from __future__ import annotations

import csv
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.commands.predict import open_predictor, worker_predictor
from scratchdet.inference import ray_predict, shards
from scratchdet.inference.run import TIMING_KEYS

PHOTOS = ("red_DSC_0879.JPG", "white_DSC_0439.JPG", "white_train_scratch_3_img112.JPG")
FAST = ["--scale", "0.25", "--threshold", "0.6"]  # a quarter-scale decode keeps it quick


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """A local Ray instance with 2 CPUs for the module (``predict --ray`` reuses it)."""
    try:
        import ray
    except ImportError:
        if os.environ.get("SCRATCHDET_REQUIRE_RAY") == "1":
            pytest.fail("ray is not installed: pip install -e '.[ray]'")
        pytest.skip("ray is not installed (pip install 'scratchdet[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def onnx_model(untrained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The untrained model exported to ONNX (each actor loads it faster than ``model.pt``)."""
    from scratchdet.inference.export import export_checkpoint

    path, _ = export_checkpoint(untrained_model, tmp_path_factory.mktemp("ray") / "model.onnx")
    return path


@pytest.fixture()
def photos(sample: Path, tmp_path: Path) -> list[str]:
    """Three val photos and one that cannot be read (the third of four)."""
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    found = [str(sample / "val" / name) for name in PHOTOS]
    return [*found[:2], str(bad), found[2]]


def _without_timings(path: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(path.open()))
    return [{k: v for k, v in r.items() if k.removesuffix("_ms") not in TIMING_KEYS}
            for r in rows]


def _assert_same_outputs(mine: Path, single: Path) -> None:
    for name in ("results.bbox.json", "image_ids.json"):
        assert (mine / name).read_bytes() == (single / name).read_bytes(), name
    assert _without_timings(mine / "verdicts.csv") == _without_timings(single / "verdicts.csv")
    assert not (mine / shards.PARTS_DIR).exists()  # parts go once merged


@pytest.mark.slow
def test_ray_gives_the_single_process_outputs(
    ray_local: Any, onnx_model: Path, photos: list[str], tmp_path: Path
) -> None:
    single = CliRunner().invoke(app, ["predict", str(onnx_model), *photos, *FAST,
                                      "--out", str(tmp_path / "single"),
                                      "--overlays", str(tmp_path / "single-ovl")])
    assert single.exit_code == 1, single.output
    res = CliRunner().invoke(app, ["predict", str(onnx_model), *photos, *FAST, "--ray",
                                   "--ray-workers", "2", "--ray-shard-size", "2",
                                   "--out", str(tmp_path / "ray"),
                                   "--overlays", str(tmp_path / "ray-ovl")])
    assert res.exit_code == 1, res.output  # the unreadable photo, as in one process
    assert "warning: skipped" in res.output and "broken.jpg" in res.output
    assert "1 photo(s) could not be read and were skipped" in res.output
    assert "3/4 photos predicted (onnx on Ray" in res.output
    assert "wrote 6 files" in res.output and "wrote 6 files" in single.output
    _assert_same_outputs(tmp_path / "ray", tmp_path / "single")
    overlays = sorted(p.name for p in (tmp_path / "ray-ovl").iterdir())
    assert overlays == sorted(p.name for p in (tmp_path / "single-ovl").iterdir())
    assert len(overlays) == 3
    for name in overlays:  # the same drawing code on the same detections
        assert (tmp_path / "ray-ovl" / name).read_bytes() == \
            (tmp_path / "single-ovl" / name).read_bytes()
    again = CliRunner().invoke(app, ["predict", str(onnx_model), *photos, *FAST, "--ray",
                                     "--out", str(tmp_path / "ray")])
    assert again.exit_code == 2 and "already exists; pass --force" in again.output


class _Killed(Exception):
    """Stands for a kill right after the first shard's part file was written."""


def test_a_killed_run_resumes_without_redoing_a_shard(
    ray_local: Any, onnx_model: Path, photos: list[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scratchdet.data.photos import collect_photos
    from scratchdet.inference.run import image_ids

    single = CliRunner().invoke(app, ["predict", str(onnx_model), *photos, *FAST,
                                      "--out", str(tmp_path / "single"), "--quiet"])
    assert single.exit_code == 1, single.output
    model, _, threshold, _ = open_predictor(onnx_model, threshold=0.6, scale=0.25)
    options = {"runtime": "onnx", "scale": 0.25}
    job = ray_predict.Job(functools.partial(worker_predictor, onnx_model, threads=1, **options),
                          tuple(model.spec.category_ids), threshold,
                          {"model": model.model_id, **options})
    found = collect_photos(photos)
    ids = image_ids(found)
    opts = ray_predict.RayOptions(workers=2, shard_size=2)
    out = tmp_path / "ray"
    write = shards.PartStore.write

    def write_then_die(self: shards.PartStore, shard: int, lines: dict[int, str]) -> Path:
        write(self, shard, lines)
        raise _Killed(shard)

    monkeypatch.setattr(shards.PartStore, "write", write_then_die)
    with pytest.raises(_Killed) as killed:
        ray_predict.predict_on_ray(job, found, ids, out, opts)
    first = killed.value.args[0]
    part = out / shards.PARTS_DIR / f"part-{first:06d}.jsonl"
    assert [p.name for p in (out / shards.PARTS_DIR).glob("part-*")] == [part.name]
    assert not (out / "results.bbox.json").exists()

    monkeypatch.setattr(shards.PartStore, "write", write)
    other = ray_predict.Job(job.make_predictor, job.category_ids, job.threshold,
                            {**job.settings, "scale": 0.5})
    with pytest.raises(ValueError, match=r"another run \(differs in: settings\)"):
        ray_predict.predict_on_ray(other, found, ids, out, opts)  # refused before Ray runs

    seen: list[str] = []
    left: list[int] = []
    files, summary = ray_predict.predict_on_ray(
        job, found, ids, out, opts, on_photo=lambda r: seen.append(r.path.name),
        on_start=left.append)
    done_before = {found[i].name for i in range(2 * first, 2 * first + 2)}
    assert left == [2] and summary["resumed"] == 2
    assert sorted(seen) == sorted({p.name for p in found} - done_before)  # none redone
    assert summary["photos"] == 4 and summary["predicted"] == 3
    assert len(summary["failed"]) == 1 and "broken.jpg" in summary["failed"][0]
    assert [f.name for f in files] == ["results.bbox.json", "image_ids.json", "verdicts.csv"]
    _assert_same_outputs(out, tmp_path / "single")


def test_ray_not_installed_exits_2(
    onnx_model: Path, photos: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    res = CliRunner().invoke(app, ["predict", str(onnx_model), *photos, "--ray",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "--ray needs Ray Data (ray missing): pip install 'scratchdet[ray]'" in res.output
    assert not (tmp_path / "o").exists()


def test_bad_ray_arguments_exit_2_before_ray_starts(
    onnx_model: Path, photos: list[str], tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    res = CliRunner().invoke(app, ["predict", str(onnx_model), *photos, "--ray",
                                   "--ray-gpus-per-worker", "1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--ray-gpus-per-worker goes with --device cuda" in res.output
    parts = tmp_path / "o" / shards.PARTS_DIR
    parts.mkdir(parents=True)
    (parts / "run.json").write_text('{"format": "scratchdet-sharded-predict/1", "photos": 9}')
    other = CliRunner().invoke(app, ["predict", str(onnx_model), *photos, "--ray",
                                     "--out", str(tmp_path / "o")])
    assert other.exit_code == 2, other.output
    assert "holds the parts of another run (differs in: photo_list_sha256, photos, settings, " \
        "shard_size, threshold); rerun that command" in other.output


@pytest.mark.parametrize(("photos", "workers", "shard", "rows"), [
    (16, 2, 256, 2),            # a few photos: four blocks per actor
    (3, 2, 256, 1),
    (1_000_000, 16, 256, 256),  # an archive: a shard to a block
    (1000, 4, 16, 16),
    (0, 2, 256, 1),
])
def test_block_rows(photos: int, workers: int, shard: int, rows: int) -> None:
    assert ray_predict.block_rows(photos, workers, shard) == rows
