"""The sensitivity depth tests/sdepth_report.py groups chunked inputs by."""

from __future__ import annotations

import pytest
from composition_depth import cut_positions
from cut_report import lists_open_at_cut as straddling
from sdepth_report import cut_sensitivity, sensitivity_depth, value_with

from rir_core.generate import Recipe, generate
from rir_core.listops import evaluate_tokens


def tokens_of(text: str) -> list[str]:
    return text.split()


def test_replacing_a_lists_value_recomputes_the_lists_around_it() -> None:
    tokens = tokens_of("[SM 3 [MAX 5 6 ] 2 ]")
    assert value_with(tokens, -1, 0) == evaluate_tokens(tokens) == 1
    assert value_with(tokens, 2, 0) == 5  # 3 + 0 + 2
    assert value_with(tokens, 2, 9) == 4  # 3 + 9 + 2 = 14
    assert value_with(tokens, 0, 7) == 7  # the root list's value is the answer


def test_a_list_whose_value_cannot_change_the_answer_stops_the_count() -> None:
    # "[MAX 9 [SM 3" | "4 ] ]": the SM list straddles the cut, but MAX already has a 9.
    tokens = tokens_of("[MAX 9 [SM 3 4 ] ]")
    assert straddling(tokens, 4) == [0, 2]
    assert cut_sensitivity(tokens, 4) == 1
    # With a 1 in place of the 9 the SM list's value matters: two lists to compose.
    tokens = tokens_of("[MAX 1 [SM 3 4 ] ]")
    assert cut_sensitivity(tokens, 4) == 2


def test_the_count_stops_at_the_first_list_that_does_not_matter() -> None:
    # The MIN list (value 0 already) hides whatever the SM list inside it holds.
    tokens = tokens_of("[SM 1 [MIN 0 [SM 5 6 ] ] 2 ]")
    assert straddling(tokens, 6) == [0, 2, 4]
    assert cut_sensitivity(tokens, 6) == 2
    assert cut_sensitivity(tokens, 2) == 1  # "[SM 1 |": only the root list is open


@pytest.mark.parametrize("width", [8, 30])
def test_an_inputs_depth_is_its_deepest_cut(width: int) -> None:
    for ex in generate(Recipe(2, 100), 300, seed=5):
        tokens = ex.text.split()
        cuts = cut_positions(len(tokens), width)
        depth = sensitivity_depth(tokens, width)
        assert depth == max((cut_sensitivity(tokens, c) for c in cuts), default=0)
        assert depth <= max((len(straddling(tokens, c)) for c in cuts), default=0)
        if cuts:
            assert depth >= 1  # the root list straddles every cut, and it is the answer
