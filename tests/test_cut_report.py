"""The grouping tests/cut_report.py reports chunk compositions by."""

from __future__ import annotations

from cut_report import group_keys, open_at_cut, two_chunk_lengths


def tokens_of(text: str) -> list[str]:
    return text.split()


def test_the_lists_left_open_at_a_cut_outermost_first() -> None:
    tokens = tokens_of("[SM 3 [MAX 2 5 ] [MIN 4 7 ] 0 ]")
    assert open_at_cut(tokens, 1) == ["SM"]
    assert open_at_cut(tokens, 4) == ["SM", "MAX"]  # "[SM 3 [MAX 2" | "5 ] ..."
    assert open_at_cut(tokens, 6) == ["SM"]  # the MAX list closed inside the first chunk
    assert open_at_cut(tokens, len(tokens)) == []


def test_an_input_counts_in_its_depth_and_its_open_operators() -> None:
    tokens = tokens_of("[MED 1 [SM 3 4 ] [MAX 2 5 9 ] 0 ]")
    assert group_keys(tokens, 8) == ["all", "depth 2", "outermost open MED", "open MED/MAX"]
    assert group_keys(tokens, 2) == ["all", "depth 1", "outermost open MED", "open MED"]


def test_two_chunk_lengths_are_cut_exactly_once() -> None:
    from rir_core.outer import chunk_sizes

    lo, hi = two_chunk_lengths(8)
    assert (lo, hi) == (12, 16)
    assert all(len(chunk_sizes(n, 8)) == 2 for n in range(lo, hi + 1))
    assert len(chunk_sizes(lo - 1, 8)) == 1 and len(chunk_sizes(hi + 1, 8)) == 3


def test_a_depth_one_cut_splits_the_root_lists_arguments() -> None:
    from probe_cut_values import split_values, top_level_arguments

    tokens = tokens_of("[SM 3 [MAX 2 5 ] 4 7 [MIN 0 1 ] ]")
    assert top_level_arguments(tokens) == [(1, 1), (2, 5), (6, 6), (7, 7), (8, 11)]
    assert split_values(tokens, 7) == ([3, 5, 4], [7, 0])  # "... 4 | 7 [MIN 0 1 ] ]"
    assert split_values(tokens, 4) is None  # the cut falls inside the MAX list
    assert split_values(tokens, 1) is None  # nothing of the root list before the cut


def test_a_lesson_is_the_cuts_with_that_many_lists_open() -> None:
    from make_cut_lessons import is_lesson

    one = tokens_of("[SM 3 [MAX 2 5 ] 4 7 [MIN 0 1 ] ]")  # cut after 7 tokens: between args
    assert is_lesson(one, 7, 1)
    assert not is_lesson(one, 7, 2)
    two = tokens_of("[SM 3 [MAX 2 5 ] 4 7 [MIN 0 1 ] ]")  # cut after 4: SM holds an open MAX
    assert is_lesson(two, 4, 2)
    assert not is_lesson(two, 4, 1)


def test_s4d_per_chunk_stops_context_at_the_cut_and_restores_the_layer() -> None:
    import torch
    from cut_report import s4d_per_chunk

    from rir_core.model import build_model

    torch.manual_seed(0)
    model = build_model(hidden_size=16, scorer_slice=8, scorer_hidden=8, chunk_width=4).eval()
    a = "[SM 3 4 5 6 [MAX 1 2 ] ]"
    b = "[MIN 9 0 5 6 [MAX 1 2 ] ]"  # differs from a only before the cut (after token 4)
    ids, mask = model.encode_texts([a, b])[:2]
    with torch.no_grad():
        leaves = model.embed(ids, mask)  # (2, L, D)
        with s4d_per_chunk(model, 4):
            cut_leaves = model.embed(ids, mask)
        again = model.embed(ids, mask)
    # Normally the second chunk's leaves see the first chunk through the S4D ...
    assert not torch.allclose(leaves[0, 4:], leaves[1, 4:], atol=1e-4)
    # ... and with the S4D per chunk they do not: they depend on their own chunk alone.
    torch.testing.assert_close(cut_leaves[0, 4:], cut_leaves[1, 4:])
    assert not torch.allclose(cut_leaves[0, :4], cut_leaves[1, :4], atol=1e-4)
    torch.testing.assert_close(again, leaves)  # the layer is whole again after the block


def test_a_deeper_cut_leaves_the_straddling_argument_on_neither_side() -> None:
    from probe_cut_values import split_values

    tokens = tokens_of("[SM 3 [MAX 2 5 ] 4 7 [MIN 0 1 ] ]")
    # "[SM 3 [MAX 2 | 5 ] 4 7 [MIN 0 1 ] ]": the MAX list straddles the cut.
    assert split_values(tokens, 4, straddling=True) == ([3], [4, 7, 0])
    assert split_values(tokens, 7, straddling=True) == ([3, 5, 4], [7, 0])  # as at depth 1
    # "[SM 3 [MAX 2 5 ] 4 7 [MIN 0 | 1 ] ]": nothing of the root list after the cut.
    assert split_values(tokens, 10, straddling=True) is None


def test_one_level_down_the_list_the_cut_falls_inside_is_split() -> None:
    from probe_cut_values import list_arguments, lists_open_at_cut, split_values

    tokens = tokens_of("[SM 3 [MAX 2 [MIN 6 1 ] 5 ] 4 ]")
    assert list_arguments(tokens, 2) == [(3, 3), (4, 7), (8, 8)]  # 2, [MIN 6 1 ], 5
    assert lists_open_at_cut(tokens, 6) == [0, 2, 4]  # "[SM 3 [MAX 2 [MIN 6 | 1 ] 5 ] 4 ]"
    assert lists_open_at_cut(tokens, 9) == [0, 2]  # after "... ] 5", the MIN list closed
    # "[SM 3 [MAX 2 [MIN 6 1 ] | 5 ] 4 ]": the MAX list is split between two whole arguments.
    assert split_values(tokens, 8, straddling=True, level=2) == ([2, 1], [5])
    # "[SM 3 [MAX 2 [MIN 6 | 1 ] 5 ] 4 ]": the MIN list straddles, so MAX keeps 2 | 5.
    assert split_values(tokens, 6, straddling=True, level=2) == ([2], [5])
    assert split_values(tokens, 6, straddling=True, level=3) == ([6], [1])
    assert split_values(tokens, 6, straddling=True, level=4) is None  # three lists open
