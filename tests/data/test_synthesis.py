"""Scratch copy-paste: cutting, transforming, pasting, placement and the preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchdet.data.synthesis import (
    ScratchPatch,
    SynthesisConfig,
    cut_scratch,
    inverts,
    paste_random,
    paste_scratch,
    render_synthesis_preview,
    transform_patch,
)


def _surface(h: int = 200, w: int = 300) -> np.ndarray:
    """Painted surface: a smooth gradient plus a little noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    lum = 180 + 0.1 * xx - 0.05 * yy + rng.normal(0, 1.5, (h, w))
    return np.clip(np.repeat(lum[..., None], 3, axis=2), 0, 255).astype(np.uint8)


def _scratched() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    img = _surface()
    for i in range(40):  # a dark diagonal line from (110, 60) to (149, 99)
        img[60 + i, 110 + i] = 90
        img[60 + i, 111 + i] = 110
    return img, (105, 55, 155, 105)


def test_cut_scratch_alpha_follows_the_scratch() -> None:
    img, box = _scratched()
    patch = cut_scratch(img, box, ring=8, feather=3, source="x.jpg")
    assert patch is not None and patch.size == (50, 50) and patch.source == "x.jpg"
    i = np.arange(40)  # the line is at patch pixels (5 + i, 5 + i)
    line = patch.alpha[5 + i, 5 + i]
    assert line.min() > 0.9  # on the line: opaque
    off = patch.alpha[40:50, 0:10]
    assert off.max() < 0.05  # plain paint: transparent
    assert patch.delta[15, 15].mean() < -60  # darker than the fitted background
    edges = np.concatenate([patch.alpha[0], patch.alpha[-1], patch.alpha[:, 0], patch.alpha[:, -1]])
    assert edges.max() <= 0.5 / 3 + 1e-6  # feathered to 1/6 at most on the border


def test_cut_scratch_needs_a_ring_and_a_size() -> None:
    img, _ = _scratched()
    assert cut_scratch(img, (2, 50, 40, 80), ring=8) is None  # no ring on the left
    assert cut_scratch(img, (50, 50, 52, 80), ring=8) is None  # 2 px wide


def test_transform_patch_rotates_flips_scales() -> None:
    delta = np.zeros((10, 20, 3), dtype=np.float32)
    alpha = np.zeros((10, 20), dtype=np.float32)
    alpha[0, 0] = 1.0  # top-left corner
    p = ScratchPatch(delta, alpha)
    r = transform_patch(p, 1, False, 1.0)
    assert r.size == (10, 20) and r.alpha[19, 0] == 1.0  # counter-clockwise: to bottom-left
    f = transform_patch(p, 0, True, 1.0)
    assert f.alpha[0, 19] == 1.0
    s = transform_patch(p, 0, False, 1.5)
    assert s.size == (30, 15)


def test_paste_changes_pixels_only_inside_the_box() -> None:
    img, box = _scratched()
    patch = cut_scratch(img, box)
    assert patch is not None
    target = _surface()
    out, pasted = paste_scratch(target, patch, 200, 20, gain=1.0)
    assert pasted == (200.0, 20.0, 250.0, 70.0)
    changed = np.argwhere((out != target).any(axis=2))
    assert len(changed) > 40
    assert changed[:, 1].min() >= 200 and changed[:, 1].max() < 250
    assert changed[:, 0].min() >= 20 and changed[:, 0].max() < 70
    grey, _ = paste_scratch(np.full_like(target, (200, 40, 30)), patch, 0, 0, grey=True)
    assert grey[15, 15, 0] < 200 - 50 and grey[15, 15, 1] < 40  # darker on every channel
    with pytest.raises(ValueError, match="leaves the 300x200 image"):
        paste_scratch(target, patch, 280, 0)


def test_polarity_rule_and_inverted_paste() -> None:
    bright = ["red"]
    assert inverts("white", "red", bright) and inverts("red", "white", bright)
    assert not inverts("white", "white", bright) and not inverts("red", "red", bright)
    assert not inverts("", "red", bright) and not inverts("white", "", bright)
    assert not inverts("white", "red", [])  # switched off
    img, box = _scratched()
    patch = cut_scratch(img, box, colour="white")
    assert patch is not None and patch.colour == "white"
    assert transform_patch(patch, 1, True, 1.2).colour == "white"
    red = np.full((200, 300, 3), (150, 50, 40), dtype=np.uint8)
    out, _ = paste_scratch(red, patch, 0, 0, invert=True)
    # the dark groove becomes a light mark, the same amount on every channel
    assert (out[15, 15].astype(int) - red[15, 15] > 50).all()
    lift = out[15, 15].astype(int) - red[15, 15]
    assert lift.max() - lift.min() <= 1
    cfg = SynthesisConfig(scale_range=(1.0, 1.0), grey_probability=0.0)
    part = np.ones((200, 300), dtype=bool)
    on_red, boxes, _ = paste_random(red, part, np.zeros((0, 4)), [patch],
                                    np.random.default_rng(0), cfg, 1, colour="red")
    x0, y0, x1, y1 = boxes[0].astype(int)
    assert on_red[y0:y1, x0:x1].astype(int).sum() > red[y0:y1, x0:x1].astype(int).sum()
    on_white, boxes, _ = paste_random(_surface(), part, np.zeros((0, 4)), [patch],
                                      np.random.default_rng(0), cfg, 1, colour="white")
    x0, y0, x1, y1 = boxes[0].astype(int)
    assert on_white[y0:y1, x0:x1].astype(int).sum() < _surface()[y0:y1, x0:x1].astype(int).sum()


def test_paste_random_lands_on_the_part_clear_of_boxes_and_is_seeded() -> None:
    img, box = _scratched()
    bank = [cut_scratch(img, box)]
    part = np.zeros((200, 300), dtype=bool)
    part[20:180, 20:280] = True
    occupied = np.array([[100.0, 50.0, 160.0, 110.0]])
    cfg = SynthesisConfig(scale_range=(0.8, 1.2))

    def run(seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        return paste_random(_surface(), part, occupied, bank, np.random.default_rng(seed), cfg, 3)

    out, boxes, cats = run(1)
    assert len(boxes) >= 1 and cats == [1] * len(boxes)
    for x0, y0, x1, y1 in boxes:
        assert part[int(y0) : int(y1), int(x0) : int(x1)].all()
        assert x1 <= 100 or x0 >= 160 or y1 <= 50 or y0 >= 110  # clear of the real scratch
    again = run(1)
    np.testing.assert_array_equal(out, again[0])
    np.testing.assert_array_equal(boxes, again[1])
    empty = paste_random(
        _surface(), np.zeros_like(part), occupied, bank, np.random.default_rng(1), cfg, 3
    )
    assert len(empty[1]) == 0 and (empty[0] == _surface()).all()


def test_auto_switch() -> None:
    assert SynthesisConfig().active(24) and not SynthesisConfig().active(495)
    assert not SynthesisConfig(enabled=False).active(3)
    assert SynthesisConfig(enabled=True).active(1000)


def test_render_preview_writes_png(tmp_path: Path) -> None:
    a = np.zeros((40, 60, 3), dtype=np.uint8)
    path = render_synthesis_preview([(a, a), (a, a)], tmp_path / "p.png", cell=64)
    with Image.open(path) as im:
        assert im.size == (2 * 64 + 12, 2 * 68 + 20)
    assert not (tmp_path / "p.tmp.png").exists()


def test_negative_pastes_keep_source_polarity_and_get_no_box() -> None:
    img, box = _scratched()
    patch = cut_scratch(img, box, colour="white")
    assert patch is not None
    red = np.full((200, 300, 3), (150, 50, 40), dtype=np.uint8)
    part = np.ones((200, 300), dtype=bool)
    cfg = SynthesisConfig(scale_range=(1.0, 1.0), grey_probability=0.0, negative_probability=1.0)
    out, boxes, cats = paste_random(red, part, np.zeros((0, 4)), [patch],
                                    np.random.default_rng(0), cfg, 2, colour="red")
    assert len(boxes) == 0 and cats == []
    # both pastes landed, dark as on the white part they came from, side by side
    assert out.astype(int).sum() < red.astype(int).sum() - 2 * 2000
    # same colour: never a negative, the paste is labelled as usual
    _, boxes, _ = paste_random(_surface(), part, np.zeros((0, 4)), [patch],
                                   np.random.default_rng(0), cfg, 1, colour="white")
    assert len(boxes) == 1
    # off (the default): the random draws and the result are those of the positive paste
    plain = SynthesisConfig(scale_range=(1.0, 1.0), grey_probability=0.0)
    lit, boxes, _ = paste_random(red, part, np.zeros((0, 4)), [patch],
                                 np.random.default_rng(0), plain, 1, colour="red")
    assert len(boxes) == 1 and lit.astype(int).sum() > red.astype(int).sum()


def test_clip_polarity_keeps_only_the_scratch_sign() -> None:
    delta = np.zeros((4, 4, 3), dtype=np.float32)
    delta[1, :] = 30.0  # a light line
    delta[2, :] = -20.0  # a dark groove beside it
    patch = ScratchPatch(delta, np.ones((4, 4), dtype=np.float32), "s", 1, "red")
    base = np.full((6, 6, 3), 100, dtype=np.uint8)
    both, _ = paste_scratch(base, patch, 1, 1)
    light, _ = paste_scratch(base, patch, 1, 1, sign=1)
    dark, _ = paste_scratch(base, patch, 1, 1, sign=-1)
    assert both[2, 1:5, 0].tolist() == [130] * 4 and both[3, 1:5, 0].tolist() == [80] * 4
    assert light[2, 1:5, 0].tolist() == [130] * 4 and light[3, 1:5, 0].tolist() == [100] * 4
    assert dark[2, 1:5, 0].tolist() == [100] * 4 and dark[3, 1:5, 0].tolist() == [80] * 4
    # in paste_random: red parts only get lighter, white parts only darker; off by default
    part = np.ones((60, 60), dtype=bool)
    red = np.full((60, 60, 3), (150, 50, 40), dtype=np.uint8)
    cfg = SynthesisConfig(scale_range=(1.0, 1.0), grey_probability=0.0, clip_polarity=True)
    for colour, sign in (("red", 1), ("white", -1), ("", 0)):
        out, boxes, _ = paste_random(red, part, np.zeros((0, 4)), [patch],
                                     np.random.default_rng(0), cfg, 1, colour=colour)
        change = out.astype(int) - red
        assert len(boxes) == 1
        assert (sign * change >= 0).all() if sign else (change > 0).any() and (change < 0).any()
    assert not SynthesisConfig().clip_polarity
