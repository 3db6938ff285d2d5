"""Shard part files and their merge (``predict --ray``'s bookkeeping; no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchdet.data.photos import collect_photos
from scratchdet.inference import run, shards
from scratchdet.io import OutputExistsError

RUN = {"photo_list_sha256": "abc", "settings": {"scale": 0.25, "tta": ""}}


def _results() -> list[run.PhotoResult]:
    det = {"image_id": 1, "category_id": 1, "bbox": [1.5, 2.25, 30.0, 4.0], "score": 0.81234}
    low = {"image_id": 3, "category_id": 1, "bbox": [0.0, 0.0, 1.0, 1.0], "score": 0.1}
    times = {"decode": 0.01, "localise": 0.002, "model": 0.1, "merge": 0.0, "total": 0.112}
    return [
        run.PhotoResult(Path("a/one.jpg"), 1, [det, {**det, "score": 0.2}], times, 2),
        run.PhotoResult(Path("a/two.jpg"), 2, [], times, 1),
        run.PhotoResult(Path("b/three.png"), 3, [low], {"total": 0.3}, 1),
        run.PhotoResult(Path("bad.jpg"), 4, error="bad.jpg: cannot identify image file"),
        run.PhotoResult(Path("b/five.jpg"), 5, [{**low, "image_id": 5}], times, 4),
    ]


def test_merged_parts_are_the_single_process_files(tmp_path: Path) -> None:
    results = _results()
    ids = {r.path.name: r.image_id for r in results}
    single = run.write_outputs(results, ids, tmp_path / "single", threshold=0.5)
    store = shards.open_store(tmp_path / "sharded", RUN, len(results), 2, force=False)
    assert store.n_shards == 3 and list(store.shard_range(2)) == [4]
    for shard in (2, 0, 1):  # finished in any order
        store.write(shard, {i: shards.to_record(i, results[i]) for i in store.shard_range(shard)})
    assert store.done() == {0, 1, 2}
    files, summary = shards.write_merged(store, ids, tmp_path / "sharded", threshold=0.5)
    assert [f.name for f in files] == [f.name for f in single]
    for mine, theirs in zip(files, single, strict=True):
        assert mine.read_bytes() == theirs.read_bytes(), mine.name
    want = run.summary(results, 0.5)
    for key in ("photos", "predicted", "failed_to_read", "fail_verdicts", "s_per_photo"):
        assert summary[key] == pytest.approx(want[key]), key
    assert summary["failed"] == ["bad.jpg: cannot identify image file"]


def test_merge_with_no_detections_writes_an_empty_list(tmp_path: Path) -> None:
    res = run.PhotoResult(Path("x.jpg"), 1, [], {"total": 0.1}, 1)
    store = shards.open_store(tmp_path, RUN, 1, 8, force=False)
    store.write(0, {0: shards.to_record(0, res)})
    shards.write_merged(store, {"x.jpg": 1}, tmp_path, 0.5)
    assert (tmp_path / "results.bbox.json").read_text() == "[]\n"


def test_a_rerun_resumes_and_another_run_is_refused(tmp_path: Path) -> None:
    res = _results()
    store = shards.open_store(tmp_path, RUN, 5, 2, force=False)
    store.write(1, {i: shards.to_record(i, res[i]) for i in (2, 3)})
    again = shards.open_store(tmp_path, RUN, 5, 2, force=False)  # same run: kept
    assert again.done() == {1}
    other = {**RUN, "settings": {"scale": 0.5, "tta": ""}}
    with pytest.raises(ValueError, match=r"ray-parts: holds the parts of another run "
                       r"\(differs in: settings\).*--force to start over"):
        shards.open_store(tmp_path, other, 5, 2, force=False)
    with pytest.raises(ValueError, match=r"differs in: shard_size"):
        shards.open_store(tmp_path, RUN, 5, 3, force=False)
    assert shards.open_store(tmp_path, other, 5, 2, force=True).done() == set()
    with pytest.raises(ValueError, match=r"part-000000.jsonl: missing; rerun"):
        list(shards.open_store(tmp_path, other, 5, 2, force=False).results())


def test_a_fresh_run_does_not_overwrite_outputs(tmp_path: Path) -> None:
    (tmp_path / "verdicts.csv").write_text("old\n")
    with pytest.raises(OutputExistsError, match=r"verdicts.csv: already exists; pass --force"):
        shards.open_store(tmp_path, RUN, 3, 2, force=False)
    assert not (tmp_path / shards.PARTS_DIR).exists()
    assert shards.open_store(tmp_path, RUN, 3, 2, force=True).n_shards == 2


def test_a_part_with_the_wrong_photos_is_named(tmp_path: Path) -> None:
    res = _results()
    store = shards.open_store(tmp_path, RUN, 2, 2, force=False)
    store.path(0).write_text(shards.to_record(1, res[1]) + "\n" + shards.to_record(0, res[0]))
    with pytest.raises(ValueError, match=r"part-000000.jsonl: expected the photos 0..1 in order"):
        list(store.results())


def test_record_round_trip_and_list_digest() -> None:
    res = _results()[0]
    index, back = shards.from_record(shards.to_record(7, res))
    assert index == 7 and back == res
    photos = [Path("a/one.jpg"), Path("a/two.jpg")]
    ids = {"one.jpg": 1, "two.jpg": 2}
    digest = shards.photo_list_digest(photos, ids)
    assert digest == shards.photo_list_digest(list(photos), dict(ids))
    assert digest != shards.photo_list_digest(photos[::-1], ids)
    assert digest != shards.photo_list_digest(photos, {"one.jpg": 1, "two.jpg": 3})


def test_a_text_file_lists_photos(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jpg").write_bytes(b"x")
    listing = tmp_path / "photos.txt"
    listing.write_text(f"# archive\nsub/a.jpg\n\n  {tmp_path / 'gone.jpg'}  \r\nsub/a.jpg\n")
    got = collect_photos([str(listing), str(tmp_path / "sub")])
    # in the list's order, relative to its folder, unchecked (a missing photo is reported
    # when it is predicted), each once
    assert got == [tmp_path / "sub" / "a.jpg", tmp_path / "gone.jpg"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(FileNotFoundError, match=r"empty.txt: no photos found"):
        collect_photos(empty)
