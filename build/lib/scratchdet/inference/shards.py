"""Prediction in shards that survive a kill: per-shard part files, then the usual outputs.

A run over many photos (``predict --ray``) cuts the ordered photo list into shards of
``shard_size`` consecutive photos. Each finished shard is one part file
``<out>/ray-parts/part-<k>.jsonl`` (one :func:`to_record` line per photo, in photo order),
written atomically, so a part file is either complete or absent. ``run.json`` beside them
records what the run is (the photo list's hash, the model, the settings): a rerun of the same
command skips the shards already there; a different run in the same folder is refused.

:func:`write_merged` streams the parts, in shard order, into the same ``results.bbox.json``,
``image_ids.json`` and ``verdicts.csv`` that :func:`scratchdet.inference.run.write_outputs`
writes for a single process (same bytes; only the timing columns of ``verdicts.csv`` differ
from run to run), without holding all results in memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from scratchdet.inference.run import VERDICT_FIELDS, PhotoResult, verdict_rows
from scratchdet.io import atomic_output, check_writable, write_json_atomic, write_text_atomic

PARTS_DIR = "ray-parts"
RUN_FORMAT = "scratchdet-sharded-predict/1"
OUTPUT_NAMES = ("results.bbox.json", "image_ids.json", "verdicts.csv")


class PartsError(ValueError):
    """The part folder holds another run's parts, or a part file is missing or wrong."""


def to_record(index: int, result: PhotoResult) -> str:
    """One photo's outcome as a JSON line (``i`` is its place in the photo list)."""
    return json.dumps({"i": index, "path": str(result.path), "image_id": result.image_id,
                       "tiles": result.tiles, "timings": result.timings,
                       "error": result.error, "detections": result.detections})


def from_record(line: str) -> tuple[int, PhotoResult]:
    """The place and the :class:`PhotoResult` of a :func:`to_record` line."""
    rec = json.loads(line)
    return rec["i"], PhotoResult(Path(rec["path"]), rec["image_id"], rec["detections"],
                                 rec["timings"], rec["tiles"], rec["error"])


def photo_list_digest(photos: Sequence[Path], ids: Mapping[str, int]) -> str:
    """SHA-256 of the photo list with its image ids (a rerun must see the same list)."""
    digest = hashlib.sha256()
    for photo in photos:
        digest.update(f"{ids[photo.name]}\t{photo}\n".encode())
    return digest.hexdigest()


class PartStore:
    """The part files of one run: which shards are done, writing and reading them."""

    def __init__(self, folder: Path, n_photos: int, shard_size: int) -> None:
        if shard_size < 1:
            raise ValueError(f"shard size must be at least 1, got {shard_size}")
        self.folder, self.n_photos, self.shard_size = folder, n_photos, shard_size
        self.n_shards = -(-n_photos // shard_size)

    def shard_range(self, shard: int) -> range:
        """The places in the photo list of ``shard``'s photos."""
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, self.n_photos))

    def shard_of(self, index: int) -> int:
        return index // self.shard_size

    def path(self, shard: int) -> Path:
        return self.folder / f"part-{shard:06d}.jsonl"

    def done(self) -> set[int]:
        """The shards whose part file is there (written atomically: complete)."""
        return {k for k in range(self.n_shards) if self.path(k).is_file()}

    def write(self, shard: int, lines: Mapping[int, str]) -> Path:
        """Write shard ``shard`` from its records by place; every photo of it must be there."""
        want = self.shard_range(shard)
        assert sorted(lines) == list(want), f"shard {shard}: records {sorted(lines)} != {want}"
        return write_text_atomic(self.path(shard), "".join(lines[i] + "\n" for i in want),
                                 force=True)

    def results(self) -> Iterator[PhotoResult]:
        """Every photo's result, in photo order.

        Raises:
            PartsError: a part file is missing or does not hold its shard's photos.
        """
        for shard in range(self.n_shards):
            path, want = self.path(shard), self.shard_range(shard)
            if not path.is_file():
                raise PartsError(f"{path}: missing; rerun the same command to predict it")
            with path.open(encoding="utf-8") as handle:
                got = [from_record(line) for line in handle]
            if [i for i, _ in got] != list(want):
                raise PartsError(f"{path}: expected the photos {want.start}..{want.stop - 1} "
                                 "in order; delete it and rerun the same command")
            yield from (res for _, res in got)


def open_store(out: Path, run: Mapping[str, Any], n_photos: int, shard_size: int,
               force: bool) -> PartStore:
    """The part store of ``run`` in ``out``: resumed when ``out`` holds the same run's parts,
    else started afresh.

    ``run`` describes what must match for a resume (photo list digest, model, settings).

    Raises:
        PartsError: ``out`` holds the parts of another run and ``force`` is False.
        OutputExistsError: a fresh run would overwrite outputs and ``force`` is False.
    """
    folder = out / PARTS_DIR
    manifest = {"format": RUN_FORMAT, "photos": n_photos, "shard_size": shard_size, **run}
    manifest = json.loads(json.dumps(manifest))  # as it reads back (tuples -> lists)
    marker = folder / "run.json"
    if marker.is_file():
        try:
            old = json.loads(marker.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old == manifest:
            return PartStore(folder, n_photos, shard_size)
        if not force:
            differs = sorted(k for k in manifest.keys() | old.keys()
                             if manifest.get(k) != old.get(k))
            raise PartsError(f"{folder}: holds the parts of another run (differs in: "
                             f"{', '.join(differs)}); rerun that command to finish it, pass "
                             "--force to start over, or use another --out")
        shutil.rmtree(folder)
    for name in OUTPUT_NAMES:
        check_writable(out / name, force)
    write_json_atomic(marker, manifest, force=True, indent=1)
    return PartStore(folder, n_photos, shard_size)


def write_merged(store: PartStore, ids: Mapping[str, int], out: Path,
                 threshold: float) -> tuple[list[Path], dict[str, Any]]:
    """Write the outputs of a finished run from its parts; return the files and the run's
    summary (the keys of :func:`scratchdet.inference.run.summary`, plus ``failed``: the
    errors of the photos that could not be read).

    Overwrites: whether outputs may be replaced was decided when the run started.
    """
    stats: dict[str, Any] = {"photos": 0, "predicted": 0, "fail_verdicts": 0, "failed": []}
    total, timed = 0.0, 0
    dets_path, csv_path = out / OUTPUT_NAMES[0], out / OUTPUT_NAMES[2]
    with atomic_output(dets_path) as dets_tmp, atomic_output(csv_path) as csv_tmp, \
            dets_tmp.open("w", encoding="utf-8") as dets, \
            csv_tmp.open("w", encoding="utf-8", newline="") as table:
        writer = csv.DictWriter(table, fieldnames=VERDICT_FIELDS, lineterminator="\n")
        writer.writeheader()
        dets.write("[")
        first = True
        for res in store.results():
            stats["photos"] += 1
            if res.error is not None:
                stats["failed"].append(res.error)
                continue
            stats["predicted"] += 1
            stats["fail_verdicts"] += res.verdict(threshold) == "fail"
            if "total" in res.timings:
                total, timed = total + res.timings["total"], timed + 1
            writer.writerows(verdict_rows([res], threshold))
            for det in res.detections:  # json.dumps(list) joins its items with ", "
                dets.write(("" if first else ", ") + json.dumps(det))
                first = False
        dets.write("]\n")
        for handle in (dets, table):
            handle.flush()
            os.fsync(handle.fileno())
    ids_path = write_json_atomic(out / OUTPUT_NAMES[1], dict(ids), force=True, indent=1)
    stats["failed_to_read"] = len(stats["failed"])
    stats["s_per_photo"] = total / timed if timed else None
    stats["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return [dets_path, ids_path, csv_path], stats
