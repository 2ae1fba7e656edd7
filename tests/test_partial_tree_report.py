"""The spans tests/partial_tree_report.py looks for in the trees over partial chunks."""

from __future__ import annotations

from partial_tree_report import cut_constituents, found
from partial_tree_report import main as report_main

from rir_core.trace import tree_spans


def tokens_of(text: str) -> list[str]:
    return text.split()


def test_a_cut_inside_a_list_asks_for_its_open_and_pending_parts() -> None:
    # 0 [MAX  1 2  2 [SM  3 3  4 4 | 5 5  6 ]  7 1  8 ]
    tokens = tokens_of("[MAX 2 [SM 3 4 5 ] 1 ]")
    wanted = cut_constituents(tokens, 5)
    assert wanted == {
        "complete_first": [],
        "complete_second": [],
        "open_first": [(2, 5)],
        "pending_second": [(5, 7)],
    }


def test_complete_lists_belong_to_their_chunk_and_the_root_list_is_left_out() -> None:
    # 0 [MAX 1 [SM 2 3 3 4 4 ] 5 [MIN | 6 5 7 6 8 ] 9 ]
    tokens = tokens_of("[MAX [SM 3 4 ] [MIN 5 6 ] ]")
    wanted = cut_constituents(tokens, 6)
    assert wanted["complete_first"] == [(1, 5)]
    assert wanted["open_first"] == [(5, 6)]
    assert wanted["pending_second"] == [(6, 9)]
    assert wanted["complete_second"] == []
    assert all(s[0] > 0 for s in wanted["open_first"])  # never the root list


def test_a_tree_that_follows_the_brackets_has_every_span_and_one_that_does_not_misses() -> None:
    tokens = tokens_of("[MAX 2 [SM 3 4 5 ] 1 ]")
    wanted = cut_constituents(tokens, 5)
    # First chunk [MAX 2 [SM 3 4 as [[0, 1], [2, [3, 4]]]; second 5 ] 1 ] as [[5, 6], [7, 8]].
    follows = [[[0, 1], [2, [3, 4]]], [[5, 6], [7, 8]]]
    hits = found(set(tree_spans(follows)), wanted)
    assert hits["open_first"] == (1, 1) and hits["pending_second"] == (1, 1)
    # Left-branching in the first chunk (no node (2, 5)), right-branching in the second (no (5, 7)).
    other = [[[[[0, 1], 2], 3], 4], [5, [6, [7, 8]]]]
    hits = found(set(tree_spans(other)), wanted)
    assert hits["open_first"] == (0, 1) and hits["pending_second"] == (0, 1)


def test_the_report_runs_on_the_shipped_model(capsys) -> None:
    assert report_main(["--n", "6"]) == 0
    out = capsys.readouterr().out
    assert "cut once at W 30" in out
    for kind in ("complete_first", "complete_second", "open_first", "pending_second"):
        assert kind in out
