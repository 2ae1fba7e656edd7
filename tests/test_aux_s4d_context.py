"""tests/aux_s4d_context.py: the open-operator targets of the S4D context experiment, and a short
run of it end to end on a small model."""

from __future__ import annotations

import json

import pytest
import torch
from aux_s4d_context import IGNORE, OPS, context_targets, main
from model_helpers import tiny_config

from rir_core.checkpoint import load_checkpoint, save_checkpoint
from rir_core.data import write_tsv
from rir_core.generate import Recipe, generate
from rir_core.model import build_model

MIN, MAX, MED, SM = (OPS[k] for k in ("[MIN", "[MAX", "[MED", "[SM"))


def tokens_of(text: str) -> list[str]:
    return text.split()


def test_targets_name_the_lists_opened_before_the_chunk_innermost_first() -> None:
    tokens = tokens_of("[SM 3 [MAX 2 [MIN 7 5 ] 4 ] 6 ]")  # 12 tokens: chunks of 8 and 4 at W 8
    rows = context_targets(tokens, 8)
    assert len(rows) == 12
    assert all(r == [IGNORE] * 3 for r in rows[:8])  # the first chunk has no earlier context
    # Chunk 2 is "4 ] 6 ]": MAX (inside SM) is open at its start; each "]" closes one.
    assert rows[8] == [MAX, SM, IGNORE]
    assert rows[9] == [SM, IGNORE, IGNORE]  # after the "]" that closes MAX
    assert rows[10] == [SM, IGNORE, IGNORE]
    assert rows[11] == [IGNORE] * 3  # SM closed: nothing from before the chunk is open


def test_lists_opened_inside_the_chunk_are_not_targets() -> None:
    tokens = tokens_of("[MED 1 [MIN 2 3 4 5 6 [SM 7 8 ] ] 9 ]")  # 15 tokens: 8 + 7 at W 8
    rows = context_targets(tokens, 8)
    # At the cut MED and MIN are open; "[SM" opens inside chunk 2 and is never named.
    assert rows[8] == [MIN, MED, IGNORE]  # "[SM" itself
    assert rows[9] == [MIN, MED, IGNORE]  # "7", inside SM, inside the inherited MIN
    assert rows[11] == [MIN, MED, IGNORE]  # the "]" of SM closes a list of this chunk
    assert rows[12] == [MED, IGNORE, IGNORE]  # the "]" of MIN closes an inherited list
    assert rows[14] == [IGNORE] * 3


def test_one_chunk_inputs_have_no_targets() -> None:
    tokens = tokens_of("[MAX 2 9 [MIN 4 7 ] 0 ]")  # 9 tokens < 1.5 W: one chunk
    assert all(r == [IGNORE] * 3 for r in context_targets(tokens, 8))


def _small_checkpoint(path, use_s4d: bool = True):
    torch.manual_seed(0)
    save_checkpoint(path, build_model(tiny_config(use_s4d=use_s4d)), {"notes": "test"})
    return path


def _rows(path, n: int, seed: int) -> None:
    write_tsv(path, generate(Recipe(12, 16), n, seed=seed))


def test_a_short_run_logs_accuracy_and_the_heads_reading(tmp_path) -> None:
    init = _small_checkpoint(tmp_path / "init")
    _rows(tmp_path / "train.tsv", 40, 1)
    _rows(tmp_path / "dev.tsv", 12, 2)
    out = tmp_path / "log.jsonl"
    argv = [
        "1.0",
        "2",
        str(out),
        str(tmp_path / "train.tsv"),
        str(tmp_path / "dev.tsv"),
        f"{tmp_path / 'dev.tsv'}@30",  # the same rows at W 30: one chunk each, no targets
        "--init",
        str(init),
        "--eval-every",
        "1",
        "--widths",
        "8,30",
        "--save",
        str(tmp_path / "after"),
    ]
    assert main(argv) == 0
    evals = [r for r in map(json.loads, out.read_text().splitlines()) if "dev" in r]
    assert [r["step"] for r in evals] == [0, 1, 2]
    for r in evals:
        assert 0.0 <= r["dev"] <= 1.0 and 0.0 <= r["dev@30"] <= 1.0
        assert 0.0 <= r["dev_ctx"] <= 1.0  # 12-16 tokens at W 8: two chunks, targets named
        assert r["dev@30_ctx"] is None  # at W 30 nothing is cut, so nothing to name
    before, _ = load_checkpoint(init)
    after, _ = load_checkpoint(tmp_path / "after")
    moved = [
        name
        for name, p in after.state_dict().items()
        if not torch.equal(p, before.state_dict()[name])
    ]
    assert any(name.startswith("s4d.") for name in moved)  # trained, S4D included


def test_a_model_without_s4d_is_refused(tmp_path) -> None:
    init = _small_checkpoint(tmp_path / "init", use_s4d=False)
    _rows(tmp_path / "t.tsv", 4, 1)
    with pytest.raises(SystemExit) as err:
        main(
            [
                "1.0",
                "1",
                str(tmp_path / "o.jsonl"),
                str(tmp_path / "t.tsv"),
                str(tmp_path / "t.tsv"),
                "--init",
                str(init),
            ]
        )
    assert err.value.code == 2
