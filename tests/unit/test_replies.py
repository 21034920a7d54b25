"""Splitting long replies for Discord's 2,000-character limit."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from commands.kit.replies import split_message


def test_short_text_is_one_message():
    assert split_message("hello") == ["hello"]
    assert split_message("") == []


def test_splits_on_line_boundaries():
    lines = [f"line {i} " + "x" * 80 for i in range(100)]
    parts = split_message("\n".join(lines))
    assert all(len(p) <= 2000 for p in parts)
    assert [line for p in parts for line in p.split("\n")] == lines


def test_code_blocks_are_closed_and_reopened():
    text = "intro\n```py\n" + "\n".join(f"print({i})" + " " * 40 for i in range(200)) + "\n```\noutro"
    parts = split_message(text)
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= 2000 and part.count("```") % 2 == 0
    assert all(p.startswith("```py") for p in parts[1:-1])


def test_a_single_huge_line_is_cut():
    parts = split_message("y" * 5000)
    assert all(len(p) <= 2000 for p in parts) and "".join(parts) == "y" * 5000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=300), st.just("```"), st.just("```js")), max_size=60))
def test_every_part_fits_and_nothing_is_lost(lines):
    text = "\n".join(lines)
    parts = split_message(text)
    assert all(0 < len(p) <= 2000 for p in parts)
    words = [w for w in text.split() if "```" not in w]
    joined = " ".join(parts)
    for word in words:
        assert word in joined
