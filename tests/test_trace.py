"""Traces (CONTRACT "Trace"): exactly what the model computed, as plain JSON-able data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from model_helpers import K
from model_helpers import tiny_model as _tiny_model

from rir_core.config import Alignment
from rir_core.generate import Recipe, generate
from rir_core.trace import Trace, TraceRecorder, summary

ROOT = Path(__file__).resolve().parent.parent


def tiny_model(model_type: str = "rir_ebt_grc", seed: int = 0, **overrides):
    return _tiny_model(model_type, seed, double=False, **overrides)


def expression(n: int, seed: int = 0) -> str:
    return generate(Recipe(n, n), 1, seed)[0].text


# Lengths whose chunks never end with a chunk shorter than K + 1 at level 0 (see
# test_trace_with_a_short_last_chunk for those): unchunked, 2, 3 and 4 chunks, 3 levels.
LENGTHS = [4, 7, 9, 14, 24, 60, 200]


def _leaves(tree) -> list[int]:
    if isinstance(tree, int):
        return [tree]
    assert isinstance(tree, list) and len(tree) == 2, tree  # binary: exactly two children
    return _leaves(tree[0]) + _leaves(tree[1])


def _replay(trace: Trace) -> list:
    """Rebuild every final beam's tree from the merges recorded step by step.

    Starts from K rows of leaves, applies each step's chosen ``(parent, position)`` per chunk,
    forms the next level's rows from the alignment picks, and returns the final trees.
    """
    d = trace.to_dict()
    n, k = len(d["tokens"]), d["settings"]["beam_size"]
    rows = [list(range(n)) for _ in range(k)]
    final = None
    for lv in d["levels"]:
        start, roots = 0, []
        assert sum(c["nodes"] for c in lv["chunk_details"]) == len(rows[0])
        for detail in lv["chunk_details"]:
            m = detail["nodes"]
            beams = [row[start : start + m] for row in rows]
            assert len(detail["steps"]) == m - 1
            for step in detail["steps"]:
                new = []
                for ch in step["chosen"]:
                    row, j = beams[ch["parent"]], ch["position"]
                    if ch["valid"]:
                        assert 0 <= j < len(row) - 1, "a valid merge must join two real nodes"
                        new.append(row[:j] + [[row[j], row[j + 1]]] + row[j + 2 :])
                    else:  # an invalid filler beam: its content is never used
                        new.append(row[:-1])
                beams = new
            for kk, b in enumerate(detail["final_beams"]):
                if b["valid"]:
                    assert b["tree"] == beams[kk][0]
            roots.append([b[0] for b in beams])
            start += m
        if lv["alignment"] is None:
            final = roots[0]
        else:
            slots = lv["alignment"]["slots"]
            rows = [[roots[c][s["picks"][c]] for c in range(len(roots))] for s in slots]
    return final


@pytest.mark.parametrize("alignment", list(Alignment))
@pytest.mark.parametrize("n", LENGTHS)
def test_trees_are_full_and_replay_the_recorded_merges(n: int, alignment: Alignment) -> None:
    model = tiny_model()
    trace = model.trace(expression(n, seed=n), seed=n, alignment=alignment)
    assert len(trace.tokens) == n
    replayed = _replay(trace)
    for k, beam in enumerate(trace.final_beams):
        if beam["valid"]:
            assert _leaves(beam["tree"]) == list(range(n))
            assert beam["tree"] == replayed[k]
        else:
            assert beam["weight"] == 0.0
    assert sum(b["weight"] for b in trace.final_beams) == pytest.approx(1.0)
    assert trace.final_beams[0]["valid"]
    # Chunk spans tile each level's nodes, in order, over the original tokens.
    for lv in trace.levels:
        spans = lv["chunks"]
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize("n", [9, 60, 200])
def test_every_final_node_says_where_it_was_built(n: int) -> None:
    """``built``: each merged node of a final tree names the level, chunk and merge step whose
    recorded merges include its span; every merged node is listed once."""
    trace = tiny_model().trace(expression(n, seed=n), seed=n)
    for beam in trace.final_beams:
        if not beam["valid"]:
            continue
        built = beam["built"]
        assert len(built) == n - 1  # a full binary tree over n tokens has n - 1 merged nodes
        assert len({(a, b) for a, b, *_ in built}) == n - 1
        assert built[0][:2] == [0, n]  # pre-order: the root first
        for a, b, level, chunk, step in built:
            merges = trace.levels[level]["chunk_details"][chunk]["steps"][step - 1]["chosen"]
            assert [a, b] in [m["merged_span"] for m in merges if m["valid"]], (a, b)
    assert {x[2] for x in trace.final_beams[0]["built"]} == set(range(len(trace.levels)))
    assert (
        json.loads(json.dumps(trace.to_dict()))["final_beams"][0]["built"]
        == (trace.final_beams[0]["built"])
    )


@pytest.mark.parametrize("n", [4, 24, 60])
def test_pair_probabilities_sum_to_one(n: int) -> None:
    trace = tiny_model().trace(expression(n, seed=n))
    for lv in trace.levels:
        for detail in lv["chunk_details"]:
            for step in detail["steps"]:
                for beam in step["beams"]:
                    assert len(beam["pair_probs"]) == len(beam["nodes"]) - 1
                    assert sum(beam["pair_probs"]) == pytest.approx(1.0, abs=1e-5)
                survivors = [c for c in step["candidates"] if c["survived"]]
                assert len(survivors) == K


@pytest.mark.parametrize("model_type", ["rir_ebt_grc", "ebt_grc", "bt_grc", "bbt_grc"])
def test_trace_mode_logits_equal_normal_logits(model_type: str) -> None:
    model = tiny_model(model_type)
    text = expression(24, seed=2)
    ids, mask, lengths = model.encode_texts([text])
    plain = model(ids, mask, 7)
    recorder = TraceRecorder(lengths[0], model.settings().beam_size)
    traced = model(ids, mask, 7, lengths=lengths, recorder=recorder)
    assert torch.equal(plain, traced)
    trace = model.trace(text, seed=7)
    assert trace.probabilities == pytest.approx(plain.softmax(-1)[0].tolist(), abs=1e-6)
    assert _leaves(trace.final_beams[0]["tree"]) == list(range(24))


@pytest.mark.parametrize("model_type", ["rir_ebt_grc", "bbt_grc"])
def test_to_dict_is_plain_json_and_has_the_contract_keys(model_type: str) -> None:
    trace = tiny_model(model_type).trace(expression(24, seed=4), seed=1)
    d = trace.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert Trace.from_dict(d).to_dict() == d
    assert isinstance(d["tokens"], list) and all(isinstance(t, str) for t in d["tokens"])
    assert isinstance(d["ground_truth"], int) and isinstance(d["prediction"], int)
    assert len(d["probabilities"]) == 10
    assert d["prediction"] == max(range(10), key=d["probabilities"].__getitem__)
    assert {"performed", "rir_bound", "ebt", "balanced"} <= set(d["depth"])
    assert isinstance(d["depth"]["performed"], int) and isinstance(d["depth"]["rir_bound"], float)
    for lv in d["levels"]:
        assert all(len(span) == 2 for span in lv["chunks"])
    for beam in d["final_beams"]:
        assert {"weight", "score", "tree"} <= set(beam)


def test_one_token_expression() -> None:
    trace = tiny_model().trace("7")
    assert trace.tokens == ["7"] and trace.ground_truth == 7
    assert trace.final_beams[0]["tree"] == 0
    assert trace.depth["performed"] == 0
    assert "depth performed 0" in summary(trace)


@pytest.mark.parametrize(
    ("width", "beams", "n"),
    [(5, 3, 12), (5, 3, 8), (30, 7, 62)],  # last chunk of level 0: 2, 3 and 2 nodes
)
def test_trace_with_a_short_last_chunk(width: int, beams: int, n: int) -> None:
    """A chunk shorter than the level's widest gets filler beams at padding positions.

    Fails while ``TraceRecorder.inner_step`` (rir_core/trace.py) rebuilds a filler beam's trees
    with ``row[j]`` for a position j beyond the chunk's row: IndexError when j >= len(row), and
    a row that keeps one node too many when j == len(row) - 1.
    """
    model = tiny_model(chunk_width=width, beam_size=beams)
    text = expression(n, seed=n)
    trace = model.trace(text, seed=1)
    replayed = _replay(trace)
    for k, beam in enumerate(trace.final_beams):
        if beam["valid"]:
            assert beam["tree"] == replayed[k]
    for lv in trace.levels:
        for detail in lv["chunk_details"]:
            for step in detail["steps"]:
                for beam in step["beams"]:  # each row has one node per remaining position
                    assert len(beam["nodes"]) == detail["nodes"] - step["step"]


# ------------------------------------------------------------------------------------------
# Command line


def _checkpoint_dir(tmp_path: Path) -> Path:
    from rir_core.checkpoint import save_checkpoint

    path = tmp_path / "ckpt"
    save_checkpoint(path, tiny_model(), {"note": "tiny test model"})
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rir_core.trace", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prints_a_summary_and_writes_json(tmp_path: Path) -> None:
    ckpt = _checkpoint_dir(tmp_path)
    text = expression(24, seed=5)
    out = tmp_path / "trace.json"
    proc = _cli(text, "--checkpoint", str(ckpt), "--json", str(out), "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "prediction" in proc.stdout and "depth performed" in proc.stdout
    assert "level 0" in proc.stdout
    d = json.loads(out.read_text())
    assert d["tokens"] == text.split()
    assert d["settings"]["seed"] == 3
    assert len(d["probabilities"]) == 10 and d["depth"]["performed"] >= 1


def test_cli_malformed_expression_is_one_sentence(tmp_path: Path) -> None:
    ckpt = _checkpoint_dir(tmp_path)
    proc = _cli("[MAX 2 9", "--checkpoint", str(ckpt))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in proc.stderr
