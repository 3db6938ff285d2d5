"""Archive-scale prediction on Ray Data (``scratchdet predict ... --ray``).

The photos of the shards left to do (:mod:`scratchdet.inference.shards`) become a Ray
dataset of ``(i, path, image_id)`` rows, in blocks of at most a shard. ``map_batches`` runs
:class:`PhotoWorker`, a callable class, on a pool of actors: each actor builds the predictor
once (the same predictor ``predict`` builds, from the factory it is given) and turns photos
into compact per-photo records (:func:`scratchdet.inference.shards.to_record`), drawing
overlays itself when asked (the overlay folder must then be visible to every node). The
driver streams the records back, writes each finished shard's part file atomically and
forgets it, then merges the parts into the single-process outputs. A killed run, rerun with
the same command, skips the shards done.

Ray is the optional ``ray`` extra, imported only here and only when called.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scratchdet.inference import shards
from scratchdet.inference.predictor import TiledPredictor
from scratchdet.inference.run import PhotoResult, predict_photos, write_overlays
from scratchdet.io import check_writable

RAY_EXTRA = "pip install 'scratchdet[ray]'"


class RayUnavailableError(RuntimeError):
    """Ray (the ``ray`` extra) is not installed."""


def import_ray() -> Any:
    """The ``ray`` module with Ray Data loaded.

    Raises:
        RayUnavailableError: not installed (the message says which extra to install).
    """
    try:
        import ray
        import ray.data  # Ray Data: the ray[data] extra
    except ImportError as err:
        raise RayUnavailableError(f"--ray needs Ray Data ({err.name} missing): "
                                  f"{RAY_EXTRA}") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the run goes.

    ``address``: ``None`` starts a local Ray instance with ``local_cpus`` CPUs (0: all);
    else a running cluster (``auto``, ``ray://head:10001``). ``workers``: actors, each
    loading the model once (0: as many as the cluster's CPUs, or GPUs, allow).
    ``shard_size``: photos per part file (the unit of resuming).
    """

    address: str | None = None
    workers: int = 0
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    shard_size: int = 256
    local_cpus: int = 0


class PhotoWorker:
    """A Ray Data callable class: builds the predictor once per actor, then predicts batches
    of ``{"i", "path", "image_id"}`` rows into ``{"record"}`` rows."""

    def __init__(self, make_predictor: Callable[[], TiledPredictor],
                 category_ids: Sequence[int], overlays: str | None, threshold: float) -> None:
        self.predictor = make_predictor()
        self.category_ids = list(category_ids)
        self.overlays, self.threshold = overlays, threshold

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        photos = [Path(str(path)) for path in batch["path"]]
        ids = {p.name: int(i) for p, i in zip(photos, batch["image_id"], strict=True)}
        # the whole batch in one call: a batched (GPU) predictor decodes and runs it together
        results = predict_photos(self.predictor, photos, ids, self.category_ids)
        records = []
        for index, res in zip(batch["i"], results, strict=True):
            if self.overlays is not None and res.error is None:
                # overwriting: a photo redone after a kill replaces its own overlay; other
                # files were checked before the run started
                write_overlays([res], self.overlays, self.threshold, force=True)
            records.append(shards.to_record(int(index), res))
        return {"record": np.array(records, dtype=object)}


@contextmanager
def ray_session(ray: Any, opts: RayOptions) -> Iterator[None]:
    """Use the Ray instance already up in this process, else connect to ``opts.address`` or
    start a local one; disconnect (or stop it) afterwards if started here."""
    if ray.is_initialized():
        yield
        return
    if opts.address is None:
        ray.init(address="local", num_cpus=opts.local_cpus or os.cpu_count() or 1,
                 include_dashboard=False, logging_level="warning")
    else:
        ray.init(address=opts.address, logging_level="warning")
    try:
        yield
    finally:
        ray.shutdown()


def pool_size(ray: Any, opts: RayOptions) -> int:
    """``opts.workers``, else as many actors as the cluster's free CPUs (GPUs) hold."""
    if opts.workers:
        return opts.workers
    free = ray.available_resources()
    if opts.gpus_per_worker > 0:
        return max(1, math.floor(free.get("GPU", 0) / opts.gpus_per_worker))
    return max(1, math.floor(free.get("CPU", 1) / opts.cpus_per_worker))


def block_rows(n_photos: int, workers: int, shard_size: int) -> int:
    """Photos per Ray block: about four blocks per actor (so the actors share the work
    evenly), at most a shard (the results of a block come back together)."""
    return max(1, min(shard_size, math.ceil(n_photos / (4 * workers))))


def photo_dataset(ray: Any, photos: Sequence[Path], ids: Mapping[str, int],
                  places: Sequence[int], rows: int) -> Any:
    """The ``(i, path, image_id)`` rows of the photos at ``places``, ``rows`` to a block
    (absolute paths: a worker's working folder is not the driver's)."""
    import pyarrow as pa

    tables = []
    for start in range(0, len(places), rows):
        chosen = places[start:start + rows]
        tables.append(pa.table({
            "i": pa.array(chosen, pa.int64()),
            "path": pa.array([str(photos[i].absolute()) for i in chosen], pa.string()),
            "image_id": pa.array([ids[photos[i].name] for i in chosen], pa.int64()),
        }))
    return ray.data.from_arrow(tables)


@dataclass(frozen=True)
class Job:
    """What the workers run and what a resume must match.

    ``make_predictor`` must pickle (a module-level function or a ``functools.partial`` of
    one) and build the predictor on the worker; ``settings`` names everything that changes
    the results (model id, predictor options), for the resume check.
    """

    make_predictor: Callable[[], TiledPredictor]
    category_ids: tuple[int, ...]
    threshold: float
    settings: Mapping[str, Any]
    overlays: Path | None = None


def predict_on_ray(
    job: Job, photos: Sequence[Path], ids: Mapping[str, int], out: Path, opts: RayOptions,
    force: bool = False, on_photo: Callable[[PhotoResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Predict ``photos`` on Ray and write the single-process outputs into ``out``.

    Returns the files written and the run's summary (see
    :func:`scratchdet.inference.shards.write_merged`; ``resumed``: photos done by an earlier
    run). ``on_start(n)`` is told how many photos are left; ``on_photo`` sees each photo
    predicted now, as it comes back.

    Raises:
        RayUnavailableError: Ray is not installed.
        PartsError: ``out`` holds another run's parts (without ``force``), or a part file
            was damaged.
        OutputExistsError: outputs or overlays exist (without ``force``).
    """
    ray = import_ray()
    out = Path(out)
    run = {"photo_list_sha256": shards.photo_list_digest(photos, ids),
           "threshold": job.threshold, "settings": dict(job.settings),
           "overlays": None if job.overlays is None else str(job.overlays.absolute())}
    fresh = not (out / shards.PARTS_DIR / "run.json").is_file()
    store = shards.open_store(out, run, len(photos), opts.shard_size, force)
    if fresh and job.overlays is not None and not force:
        for photo in photos:
            check_writable(job.overlays / f"{photo.stem}.jpg", force)
    done = store.done()
    todo = [k for k in range(store.n_shards) if k not in done]
    if on_start is not None:
        on_start(sum(len(store.shard_range(k)) for k in todo))
    if todo:
        places = [i for k in todo for i in store.shard_range(k)]
        with ray_session(ray, opts), _quiet_ray_data(ray):
            workers = pool_size(ray, opts)
            rows = block_rows(len(places), workers, opts.shard_size)
            dataset = photo_dataset(ray, photos, ids, places, rows)
            _run_shards(ray, job, store, dataset, min(workers, math.ceil(len(places) / rows)),
                        opts, on_photo)
    files, summary = shards.write_merged(store, ids, out, job.threshold)
    summary["resumed"] = sum(len(store.shard_range(k)) for k in done)
    shutil.rmtree(store.folder)  # the outputs hold it all now
    return files, summary


@contextmanager
def _quiet_ray_data(ray: Any) -> Iterator[None]:
    """No Ray Data progress bars or info lines (the caller shows its own progress)."""
    ctx = ray.data.DataContext.get_current()
    logger = logging.getLogger("ray.data")
    was = ctx.enable_progress_bars, logger.level
    ctx.enable_progress_bars = False
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ctx.enable_progress_bars = was[0]
        logger.setLevel(was[1])


def _run_shards(ray: Any, job: Job, store: shards.PartStore, dataset: Any, workers: int,
                opts: RayOptions, on_photo: Callable[[PhotoResult], None] | None) -> None:
    """Stream the workers' records back from ``workers`` actors; write each shard as soon as
    all its photos are in."""
    overlays = None if job.overlays is None else str(job.overlays.absolute())
    results = dataset.map_batches(
        PhotoWorker, batch_size=1, batch_format="numpy",
        fn_constructor_args=(job.make_predictor, job.category_ids, overlays, job.threshold),
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=opts.cpus_per_worker, num_gpus=opts.gpus_per_worker or None)
    pending: dict[int, dict[int, str]] = {}
    written: set[int] = set()
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        for line in batch["record"]:
            index, res = shards.from_record(str(line))
            shard = store.shard_of(index)
            if shard in written:  # a retried task's repeat
                continue
            got = pending.setdefault(shard, {})
            got[index] = str(line)
            if on_photo is not None:
                on_photo(res)
            if len(got) == len(store.shard_range(shard)):
                store.write(shard, pending.pop(shard))
                written.add(shard)
    if pending:
        raise RuntimeError(f"Ray returned incomplete shards {sorted(pending)}; rerun the "
                           "same command to finish them")
