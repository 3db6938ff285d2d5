"""open_shrunk: reduced decode within max_side, full size in the (upright) photo's frame."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from scratchdet.imaging import open_shrunk


def _jpeg(path: Path, size: tuple[int, int], orientation: int = 1) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", size, (200, 10, 10)).save(path, exif=exif.tobytes())
    return path


def test_long_side_fits_and_full_size_is_reported(tmp_path: Path) -> None:
    img, full = open_shrunk(_jpeg(tmp_path / "a.jpg", (1200, 800)), 300)
    assert full == (1200, 800)
    assert img.size == (300, 200) and img.mode == "RGB"


def test_no_limit_keeps_the_size(tmp_path: Path) -> None:
    img, full = open_shrunk(_jpeg(tmp_path / "a.jpg", (64, 48)), None)
    assert img.size == full == (64, 48)


def test_upright_swaps_sides_for_orientation_6(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "r.jpg", (1200, 800), orientation=6)
    img, full = open_shrunk(path, 300, upright=True)
    assert full == (800, 1200)
    assert img.size == (200, 300)
    plain, plain_full = open_shrunk(path, 300)
    assert plain_full == (1200, 800) and plain.size == (300, 200)
