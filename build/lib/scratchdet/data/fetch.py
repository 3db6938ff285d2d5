"""Download the public scratch sample (``dataset/`` of github.com/karpovaknn/defect_detection).

Layout written under ``DEST`` (that of ``$SCRATCHDET_SAMPLE``)::

    train/ val/ test/            photos, each checked against SHA256SUMS
    annotations/{train,val,test}.json
    labeling-exports/{white,red}/*.json
    reference/{white,red}[_1600_4900]_coco.json
    SHA256SUMS

Each file is streamed to ``.<name>.part`` next to its destination and renamed only when it is
complete: the byte count matches ``Content-Length``, a photo matches its SHA256 and a json file
parses. Anything else removes the partial file and raises :class:`FetchError`. Files already
present and valid are kept, so an interrupted fetch can simply be run again.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote

from scratchdet.data.sample_manifest import (
    JSON_FILES,
    PHOTO_SHA256,
    REMOTE_ROOT,
    REPO,
    sha256sums_text,
)
from scratchdet.io import write_text_atomic

#: Git ref to download from; ``HEAD`` is the repository's default branch.
DEFAULT_REF = "HEAD"
CHUNK = 1 << 16

#: ``opener(url)`` returns a context manager yielding a binary stream (``urlopen`` does).
Opener = Callable[[str], AbstractContextManager[IO[bytes]]]


class FetchError(RuntimeError):
    """A download that failed or did not verify; the message names the URL and the file."""


@dataclass(frozen=True)
class SampleFile:
    """One file of the sample: where it lives remotely and locally, and its checksum."""

    remote: str  # path under dataset/
    local: str  # path under DEST
    sha256: str | None  # photos only


@dataclass
class FetchResult:
    """What a fetch did."""

    dest: Path
    downloaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def sample_files() -> list[SampleFile]:
    """Every file of the sample: the json files, then the photos (train, val, test)."""
    files = [SampleFile(r, loc, None) for r, loc in JSON_FILES.items()]
    files += [SampleFile(p, p, digest) for p, digest in PHOTO_SHA256.items()]
    return files


def raw_url(remote: str, ref: str = DEFAULT_REF, repo: str = REPO) -> str:
    """``https://raw.githubusercontent.com/<repo>/<ref>/dataset/<remote>`` (path quoted)."""
    return f"https://raw.githubusercontent.com/{repo}/{quote(ref)}/{REMOTE_ROOT}/{quote(remote)}"


def _urlopen(url: str) -> AbstractContextManager[IO[bytes]]:
    from urllib.request import Request, urlopen

    return urlopen(Request(url, headers={"User-Agent": "scratchdet"}), timeout=60)


def sha256_of(path: Path) -> str:
    """Hex SHA256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_complete(tmp: Path, item: SampleFile, url: str, expected_len: int | None) -> None:
    size = tmp.stat().st_size
    if expected_len is not None and size != expected_len:
        raise FetchError(f"{url}: partial download, {size} of {expected_len} bytes")
    if item.sha256 is not None:
        digest = sha256_of(tmp)
        if digest != item.sha256:
            lfs = tmp.read_bytes()[:40].startswith(b"version https://git-lfs")
            hint = " (a Git LFS pointer, not the photo)" if lfs else ""
            raise FetchError(
                f"{url}: SHA256 {digest} does not match {item.sha256} listed for "
                f"{item.local} in SHA256SUMS{hint}"
            )
    else:
        try:
            json.loads(tmp.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FetchError(f"{url}: {item.local} is not valid JSON ({err})") from None


def download(item: SampleFile, dest: Path, url: str, opener: Opener) -> Path:
    """Download one file to ``dest/item.local`` via a ``.part`` file; verify, then rename."""
    target = dest / item.local
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    try:
        with opener(url) as response, tmp.open("wb") as out:
            length = getattr(response, "headers", {}).get("Content-Length")
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
        _check_complete(tmp, item, url, int(length) if length is not None else None)
        os.replace(tmp, target)
    except FetchError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, ValueError, http.client.HTTPException) as err:  # IncompleteRead too
        tmp.unlink(missing_ok=True)
        raise FetchError(f"{url}: download of {item.local} failed: {err}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _is_valid(path: Path, item: SampleFile) -> bool:
    if not path.is_file():
        return False
    if item.sha256 is not None:
        return sha256_of(path) == item.sha256
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


def fetch_sample(
    dest: str | Path,
    ref: str = DEFAULT_REF,
    opener: Opener | None = None,
    force: bool = False,
    progress: bool = False,
    files: list[SampleFile] | None = None,
) -> FetchResult:
    """Download the sample into ``dest`` (see the module doc for layout and checks).

    Args:
        dest: target folder (created).
        ref: git branch, tag or commit of the source repository.
        opener: ``url -> context manager of a binary stream``; ``urlopen`` by default.
        force: download again even the files already present and valid.
        progress: tqdm progress bar over the files.
        files: a subset of :func:`sample_files` (all by default).

    Raises:
        FetchError: a file that failed or did not verify; files already complete stay.
    """
    from tqdm import tqdm

    root = Path(dest)
    opener = opener or _urlopen
    result = FetchResult(root)
    todo = sample_files() if files is None else files
    for item in tqdm(todo, desc="fetching sample", unit="file", disable=not progress):
        if not force and _is_valid(root / item.local, item):
            result.kept.append(item.local)
            continue
        download(item, root, raw_url(item.remote, ref), opener)
        result.downloaded.append(item.local)
    write_text_atomic(root / "SHA256SUMS", sha256sums_text(), force=True)
    return result


def describe(result: FetchResult) -> str:
    """One line for the user."""
    return (
        f"{result.dest}: {len(result.downloaded)} file(s) downloaded, "
        f"{len(result.kept)} already present and valid"
    )
