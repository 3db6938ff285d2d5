"""refine_nested: each mode against an exact table; the rule's text (parse/format)."""

from __future__ import annotations

import numpy as np
import pytest

from scratchdet.geometry.nested import (
    DEFAULT_NESTED,
    KEEP,
    LEGACY_NESTED,
    format_nested,
    intersection_over_smaller,
    parse_nested,
    refine_nested,
)

# a long box (0.9); a fragment inside it (0.7); a box half inside the long one (0.6);
# a far box (0.5); a box of another class inside the long one (0.8)
BOXES = np.array([[0, 0, 100, 10], [10, 0, 30, 10], [90, 0, 110, 10], [500, 500, 520, 520],
                  [20, 0, 40, 10]], dtype=float)
SCORES = np.array([0.9, 0.7, 0.6, 0.5, 0.8])
LABELS = np.array([1, 1, 1, 1, 2])


def test_intersection_over_smaller_table() -> None:
    m = intersection_over_smaller(BOXES[:3])
    np.testing.assert_allclose(m, [[1, 1, 0.5], [1, 1, 0], [0.5, 0, 1]])
    # against other boxes: [N, M]; the same table as the square one where they coincide
    pairs = intersection_over_smaller(BOXES[:3], BOXES[3:])
    np.testing.assert_allclose(pairs, [[0, 1], [0, 0.5], [0, 0]])
    np.testing.assert_allclose(intersection_over_smaller(BOXES[:3], BOXES[:3]), m)
    assert intersection_over_smaller(BOXES[:2], np.zeros((0, 4))).shape == (2, 0)


def test_keep_sorts_only() -> None:
    _, s, lab = refine_nested(BOXES, SCORES, LABELS, "keep")
    np.testing.assert_array_equal(s, [0.9, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_array_equal(lab, [1, 2, 1, 1, 1])


def test_suppress_and_decay() -> None:
    b, s, _ = refine_nested(BOXES, SCORES, LABELS, "suppress", ios=0.5)
    np.testing.assert_array_equal(s, [0.9, 0.8, 0.5])  # fragment and half-inside box go
    _, s, _ = refine_nested(BOXES, SCORES, LABELS, "suppress", ios=0.6)
    np.testing.assert_array_equal(s, [0.9, 0.8, 0.6, 0.5])  # half inside is not enough
    b, s, _ = refine_nested(BOXES, SCORES, LABELS, "decay", ios=0.5, decay=0.5)
    np.testing.assert_allclose(s, [0.9, 0.8, 0.5, 0.35, 0.3])
    np.testing.assert_array_equal(b[3], [10, 0, 30, 10])


def test_union_and_wbf() -> None:
    b, s, lab = refine_nested(BOXES, SCORES, LABELS, "union", ios=0.5)
    np.testing.assert_array_equal(b, [[0, 0, 110, 10], [20, 0, 40, 10], [500, 500, 520, 520]])
    np.testing.assert_array_equal(s, [0.9, 0.8, 0.5])
    np.testing.assert_array_equal(lab, [1, 2, 1])
    b, s, _ = refine_nested(BOXES, SCORES, LABELS, "wbf", ios=0.5)
    expected_x0 = (0 * 0.9 + 10 * 0.7 + 90 * 0.6) / 2.2
    assert b[0, 0] == pytest.approx(expected_x0) and s[0] == 0.9


def test_bad_settings_and_empty() -> None:
    with pytest.raises(ValueError, match="nested mode must be one of keep"):
        refine_nested(BOXES, SCORES, LABELS, "merge")
    with pytest.raises(ValueError, match="0 < ios <= 1"):
        refine_nested(BOXES, SCORES, LABELS, "union", ios=0)
    b, s, lab = refine_nested(np.zeros((0, 4)), np.zeros(0), np.zeros(0), "union")
    assert b.shape == (0, 4) and len(s) == len(lab) == 0


@pytest.mark.parametrize(("text", "rule", "canonical"), [
    ("decay:0.5:0.5", ("decay", 0.5, 0.5), "decay:0.5:0.5"),
    (" DECAY ", ("decay", 0.5, 0.5), "decay:0.5:0.5"),
    ("decay:0.3", ("decay", 0.3, 0.5), "decay:0.3:0.5"),
    ("decay:1:0", ("decay", 1.0, 0.0), "decay:1.0:0.0"),
    ("suppress:0.6:0.1", ("suppress", 0.6, 0.1), "suppress:0.6"),  # decay unused: left out
    ("wbf:1", ("wbf", 1.0, 0.5), "wbf:1.0"),
    ("keep:0.3", ("keep", 0.3, 0.5), "keep"),
])
def test_rule_text_table(text: str, rule: tuple, canonical: str) -> None:
    assert parse_nested(text) == rule
    assert format_nested(rule) == canonical
    again = parse_nested(canonical)  # the canonical text acts as the rule does
    got = refine_nested(BOXES, SCORES, LABELS, *again)
    want = refine_nested(BOXES, SCORES, LABELS, *rule)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_default_rule_keeps_and_legacy_rule_halves_nested_scores() -> None:
    assert parse_nested(DEFAULT_NESTED) == KEEP and format_nested(KEEP) == "keep"
    b, s, lab = refine_nested(BOXES, SCORES, LABELS, *parse_nested(DEFAULT_NESTED))
    order = np.argsort(-SCORES, kind="stable")
    np.testing.assert_array_equal(b, BOXES[order])
    np.testing.assert_allclose(s, SCORES[order])
    np.testing.assert_array_equal(lab, LABELS[order])
    assert parse_nested(LEGACY_NESTED) == ("decay", 0.5, 0.5)
    _, s, _ = refine_nested(BOXES, SCORES, LABELS, *parse_nested(LEGACY_NESTED))
    np.testing.assert_allclose(s, [0.9, 0.8, 0.5, 0.35, 0.3])


@pytest.mark.parametrize("text", ["squash", "decay:0", "decay:0.5:1.5", "decay:x",
                                  "decay:0.5:0.5:0.5", ""])
def test_bad_rule_text_names_the_grammar(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected MODE\[:IOS\[:DECAY\]\] with MODE one of "
                                         r"keep, suppress, decay, union, wbf"):
        parse_nested(text)
