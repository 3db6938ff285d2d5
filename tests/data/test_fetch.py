"""`scratchdet data fetch-sample`, offline: URLs, layout, verification via a fake opener."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app
from scratchdet.data import fetch
from scratchdet.data.fetch import FetchError, SampleFile, fetch_sample, raw_url, sample_files

runner = CliRunner()
BASE = "https://raw.githubusercontent.com/karpovaknn/defect_detection/HEAD/dataset/"


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, length: int | None = None) -> None:
        super().__init__(data)
        self.headers = {} if length is None else {"Content-Length": str(length)}


def fake_opener(files: dict[str, bytes], length_extra: int = 0) -> Callable:
    """Serves ``files`` keyed by URL; ``length_extra`` fakes a connection cut short."""
    calls: list[str] = []

    @contextmanager
    def opener(url: str):
        calls.append(url)
        if url not in files:
            raise OSError(f"HTTP Error 404: Not Found ({url})")
        yield FakeResponse(files[url], len(files[url]) + length_extra)

    opener.calls = calls  # type: ignore[attr-defined]
    return opener


def served_by_sample(sample: Path, items: list[SampleFile]) -> dict[str, bytes]:
    return {raw_url(it.remote): (sample / it.local).read_bytes() for it in items}


def pick(*locals_: str) -> list[SampleFile]:
    by_local = {it.local: it for it in sample_files()}
    return [by_local[name] for name in locals_]


def test_urls() -> None:
    assert raw_url("train/red_DSC_0618.JPG") == BASE + "train/red_DSC_0618.JPG"
    assert raw_url("val/coco.json", ref="v1.0") == BASE.replace("HEAD", "v1.0") + "val/coco.json"
    assert raw_url("a b.jpg").endswith("/dataset/a%20b.jpg")


def test_layout_matches_the_shared_sample(sample: Path) -> None:
    items = sample_files()
    assert len(items) == 13 + 45
    locals_ = {it.local for it in items}
    on_disk = {
        p.relative_to(sample).as_posix()
        for p in sample.rglob("*")
        if p.is_file() and p.suffix in (".json", ".JPG") and "results_" not in p.name
    }
    assert on_disk <= locals_  # everything of the sample but the derived results_*.bbox.json
    assert {it.local for it in items if it.local.startswith("test/")} == {
        line.split("  ")[1]
        for line in (sample / "SHA256SUMS").read_text().splitlines()
        if line.split("  ")[1].startswith("test/")
    }
    assert pick("annotations/val.json")[0].remote == "val/coco.json"


def test_downloads_verify_and_resume(sample: Path, tmp_path: Path) -> None:
    items = pick("annotations/val.json", "train/red_DSC_0618.JPG", "val/white_DSC_0439.JPG")
    opener = fake_opener(served_by_sample(sample, items))
    result = fetch_sample(tmp_path / "s", opener=opener, files=items)
    assert result.downloaded == [it.local for it in items]
    for it in items:
        assert (tmp_path / "s" / it.local).read_bytes() == (sample / it.local).read_bytes()
    assert (tmp_path / "s" / "SHA256SUMS").read_text() == (sample / "SHA256SUMS").read_text()
    again = fetch_sample(tmp_path / "s", opener=opener, files=items)
    assert again.downloaded == [] and again.kept == [it.local for it in items]
    assert len(opener.calls) == 3  # nothing downloaded twice


def test_checksum_mismatch_is_refused_and_cleaned(sample: Path, tmp_path: Path) -> None:
    items = pick("train/red_DSC_0618.JPG")
    served = {raw_url(items[0].remote): b"\xff\xd8 not the photo"}
    with pytest.raises(
        FetchError, match=r"does not match 8b179308.* listed for train/red_DSC_0618\.JPG"
    ):
        fetch_sample(tmp_path / "s", opener=fake_opener(served), files=items)
    assert [p.name for p in (tmp_path / "s").rglob("*") if p.is_file()] == []


def test_partial_download_is_refused_and_cleaned(sample: Path, tmp_path: Path) -> None:
    items = pick("annotations/val.json")
    opener = fake_opener(served_by_sample(sample, items), length_extra=1000)
    with pytest.raises(FetchError, match=r"partial download, 32707 of 33707 bytes"):
        fetch_sample(tmp_path / "s", opener=opener, files=items)
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []


def test_bad_json_and_http_error(sample: Path, tmp_path: Path) -> None:
    items = pick("annotations/val.json")
    with pytest.raises(FetchError, match=r"annotations/val\.json is not valid JSON"):
        fetch_sample(
            tmp_path / "s", opener=fake_opener({raw_url("val/coco.json"): b"<html>"}), files=items
        )
    with pytest.raises(
        FetchError,
        match=r"val/coco\.json: download of annotations/val\.json failed: HTTP Error 404",
    ):
        fetch_sample(tmp_path / "s", opener=fake_opener({}), files=items)
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []


def test_corrupt_existing_photo_is_downloaded_again(sample: Path, tmp_path: Path) -> None:
    items = pick("train/red_DSC_0618.JPG")
    target = tmp_path / "s" / "train" / "red_DSC_0618.JPG"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half a photo")
    result = fetch_sample(
        tmp_path / "s", opener=fake_opener(served_by_sample(sample, items)), files=items
    )
    assert result.downloaded == ["train/red_DSC_0618.JPG"]
    assert target.read_bytes() == (sample / "train" / "red_DSC_0618.JPG").read_bytes()


def test_cli_reports_failure(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fetch, "_urlopen", fake_opener({}))
    result = runner.invoke(app, ["data", "fetch-sample", str(tmp_path / "s"), "--quiet"])
    assert result.exit_code == 1
    assert (
        "error: " + BASE + "train/coco.json: download of annotations/train.json failed"
        in result.output
    )
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []


def test_cli_default_dest_is_the_sample_setting(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fetch, "_urlopen", fake_opener({}))
    monkeypatch.setenv("SCRATCHDET_SAMPLE", str(tmp_path / "env-sample"))
    result = runner.invoke(app, ["data", "fetch-sample", "-q"])
    assert result.exit_code == 1
    assert (tmp_path / "env-sample" / "annotations").is_dir()  # created there, nothing left in it
    assert [p for p in (tmp_path / "env-sample").rglob("*") if p.is_file()] == []


def test_connection_cut_mid_body_is_cleaned(tmp_path: Path) -> None:
    import http.client

    class Cut(io.BytesIO):
        def __init__(self) -> None:
            super().__init__(b"")
            self.headers: dict[str, str] = {}

        def read(self, size: int = -1) -> bytes:
            raise http.client.IncompleteRead(b"partial", 100)

    @contextmanager
    def opener(url: str):
        yield Cut()

    with pytest.raises(
        FetchError, match=r"download of annotations/val\.json failed: IncompleteRead"
    ):
        fetch_sample(tmp_path / "s", opener=opener, files=pick("annotations/val.json"))
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []
