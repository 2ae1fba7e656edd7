"""tests/composition_depth.py: which lists cross a cut, and what noise in them does."""

from __future__ import annotations

import random

from composition_depth import (
    crosses,
    cut_positions,
    list_spans,
    open_at_cuts,
    pops_per_chunk,
    value_with_noise,
)

from rir_core.listops import evaluate


def tokens_of(text: str) -> list[str]:
    return text.split()


def test_cuts_follow_the_outer_recursions_chunks() -> None:
    assert cut_positions(44, 30) == []  # under 1.5 W: one chunk
    assert cut_positions(45, 30) == [30]
    assert cut_positions(100, 30) == [30, 60, 90]


def test_list_spans_and_crossing() -> None:
    tokens = tokens_of("[SM 3 [MAX 2 5 ] [MIN 4 7 ] 0 ]")
    spans = list_spans(tokens)
    assert sorted(spans) == [(0, 11, 1), (2, 5, 2), (6, 9, 2)]
    assert crosses(2, 5, [4]) and not crosses(2, 5, [6])  # "[MAX 2 5" | "] ..." vs after it
    assert crosses(0, 11, [11])  # the closing bracket alone in the next chunk
    assert open_at_cuts(tokens, [4, 6]) == [2, 1]


def test_without_noise_the_value_is_the_expressions() -> None:
    rng = random.Random(0)
    text = "[MED 1 [SM 3 4 ] [MAX 2 5 9 ] 0 ]"
    tokens = text.split()
    for d in (None, 0, 1, 5):
        assert value_with_noise(tokens, [], d, rng) == evaluate(text)  # no cut: nothing is noise
    assert value_with_noise(tokens, [4, 8], None, rng) == evaluate(text)


def test_noise_hits_only_crossing_lists_deeper_than_d() -> None:
    # Cut inside the MAX list only: with d = 1 the root stays exact but MAX becomes noise.
    tokens = tokens_of("[SM [MAX 2 5 9 ] 4 ]")  # SM(9, 4) = 3
    cut = [3]  # "[SM [MAX 2" | "5 9 ] 4 ]": both lists cross
    values = {value_with_noise(tokens, cut, 1, random.Random(s)) for s in range(40)}
    assert len(values) > 3  # the MAX list's value is random, so the sum is too
    assert {value_with_noise(tokens, cut, 2, random.Random(s)) for s in range(40)} == {3}
    # A list that does not cross keeps its value at any d.
    tokens = tokens_of("[SM [MAX 2 5 9 ] 4 1 ]")
    cut = [7]  # "[SM [MAX 2 5 9 ] 4" | "1 ]": only the root crosses
    assert {value_with_noise(tokens, cut, 1, random.Random(s)) for s in range(40)} == {4}
    assert len({value_with_noise(tokens, cut, 0, random.Random(s)) for s in range(40)}) > 3


def test_pops_count_lists_closed_in_a_later_chunk() -> None:
    tokens = tokens_of("[SM 3 [MAX 2 5 ] [MIN 4 7 ] 0 ]")
    # chunks: "[SM 3 [MAX 2" | "5 ] [MIN 4" | "7 ] 0 ]"
    assert pops_per_chunk(tokens, [4, 8]) == [1, 2]
