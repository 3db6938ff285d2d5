"""open_shrunk: reduced decode within max_side, full size in the (upright) photo's frame;
both decoders refuse broken files and decompression bombs with a ValueError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from data.builders import png_claiming as _png_claiming
from scratchdet.imaging import decode_at_scale, open_shrunk


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


@pytest.mark.parametrize("decode", [decode_at_scale, lambda p: open_shrunk(p, 300)])
def test_bomb_and_broken_files_raise_value_error_naming_the_file(tmp_path: Path, decode) -> None:
    bomb = _png_claiming(tmp_path / "bomb.png", 20000)  # 4e8 pixels > 2 x MAX_IMAGE_PIXELS
    assert bomb.stat().st_size < 1000
    with pytest.raises(ValueError, match=r"bomb\.png: refused as a possible decompression bomb"):
        decode(bomb)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg: cannot read as an image"):
        decode(broken)
    good = _jpeg(tmp_path / "a.jpg", (64, 48))
    truncated = tmp_path / "t.jpg"
    Image.effect_noise((64, 48), 60).convert("RGB").save(truncated, quality=95)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"t\.jpg: cannot read as an image"):
        decode(truncated)
    assert decode(good)[1] == (64, 48)


def test_bomb_warning_zone_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between MAX_IMAGE_PIXELS and twice that PIL only warns: refused all the same."""
    path = _jpeg(tmp_path / "a.jpg", (64, 48))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 3072 px: PIL warns
    with pytest.raises(ValueError, match=r"a\.jpg: refused as a possible decompression bomb"):
        decode_at_scale(path, 0.5)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)
    img, full = decode_at_scale(path, 0.5)
    assert full == (64, 48) and img.size == (32, 24)


def test_cut_crops_resizes_each_window() -> None:
    import numpy as np
    from PIL import Image

    from scratchdet.imaging import cut_crops

    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[:, 100:] = 255  # right half white
    crops = cut_crops(Image.fromarray(pixels), [[0, 0, 50, 50], [120, 10, 200, 90]], 32)
    assert crops.shape == (2, 32, 32, 3) and crops.dtype == np.uint8
    assert crops[0].max() == 0 and crops[1].min() == 255


def test_white_polarity_inverts_green_into_grey() -> None:
    import numpy as np
    from PIL import Image

    from scratchdet.imaging import white_polarity

    pixels = np.array([[[190, 50, 50], [235, 225, 225], [100, 20, 25]]], dtype=np.uint8)
    got = np.asarray(white_polarity(Image.fromarray(pixels)))
    # paint -> light grey, bare scratch -> dark, darker groove -> lighter than the paint
    np.testing.assert_array_equal(got[0], [[205] * 3, [30] * 3, [235] * 3])
