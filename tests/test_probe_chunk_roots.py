"""The facts tests/probe_chunk_roots.py probes chunk roots for, computed from a chunk's tokens."""

from __future__ import annotations

import torch
from probe_chunk_roots import NONE, OPS, chunk_facts, linear_probe


def test_a_chunk_that_opens_lists() -> None:
    # "[MAX 2 9 [MIN 4 7 ] [SM 3 5": MAX and SM stay open; SM's value so far is 8.
    facts = chunk_facts(["[MAX", "2", "9", "[MIN", "4", "7", "]", "[SM", "3", "5"])
    assert facts == {"pops": 0, "pushes": 2, "open_op": OPS["[SM"], "value": 8}


def test_a_chunk_that_closes_earlier_lists() -> None:
    # "7 ] 0 ] [MIN 4 [MAX 1 6 ]": two pops; MIN stays open with 4 and MAX's 6: value 4.
    facts = chunk_facts(["7", "]", "0", "]", "[MIN", "4", "[MAX", "1", "6", "]"])
    assert facts == {"pops": 2, "pushes": 1, "open_op": OPS["[MIN"], "value": 4}


def test_no_value_for_med_or_an_empty_list() -> None:
    assert chunk_facts(["[MED", "1", "2"])["value"] is None
    assert chunk_facts(["3", "]", "[MAX"]) == {
        "pops": 1, "pushes": 1, "open_op": OPS["[MAX"], "value": None,
    }  # fmt: skip
    assert chunk_facts(["1", "2", "3"])["open_op"] == NONE


def test_the_linear_probe_reads_a_linear_fact_and_not_noise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 8, generator=g)
    readable = (x[:, 0] > 0).long().tolist()
    noise = torch.randint(0, 2, (600,), generator=g).tolist()
    assert linear_probe(x, readable)[0] > 0.95
    assert linear_probe(x, noise)[0] < 0.65
