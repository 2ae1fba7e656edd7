"""The batched model agrees with the slow per-example reference (rir_core.reference).

Tiny random models in float64, eval mode, one example at a time (the reference reproduces the
batched filler convention of a batch of one). For every model type, every alignment strategy and
lengths around the chunk-width thresholds, the logits agree and the merges chosen at every level,
chunk, step and beam are identical, as are the alignment picks.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from model_helpers import W, tiny_config
from model_helpers import tiny_model as _tiny_model

from rir_core.align import align
from rir_core.config import Alignment
from rir_core.generate import Recipe, generate
from rir_core.model import build_model
from rir_core.reference import Beam, align_reference, chunk_sizes, reference_forward
from rir_core.vocab import TOKEN_TO_ID

# 1, 2, W-1, W, W+1, 1.5W-1 (largest unchunked), 1.5W (smallest chunked), 3W+1, long
LENGTHS = [1, 2, W - 1, W, W + 1, math.ceil(1.5 * W) - 1, math.ceil(1.5 * W), 3 * W + 1, 200]
TOL = {"rtol": 1e-5, "atol": 1e-6}  # see test_float64_model_keeps_float64_everywhere
_MODELS: dict[str, torch.nn.Module] = {}


def tiny_model(model_type: str, seed: int = 0):
    """A float64 eval-mode model (cached per type and seed)."""
    key = f"{model_type}-{seed}"
    if key not in _MODELS:
        _MODELS[key] = _tiny_model(model_type, seed, use_s4d=True)
    return _MODELS[key]


def tokens_of_length(n: int, seed: int = 0) -> list[str]:
    """A valid expression of exactly n tokens, or raw tokens where none exists (n < 4)."""
    if n < 4:
        return ["[MAX", "3", "7"][:n] if n != 1 else ["7"]
    return list(generate(Recipe(n, n), 1, seed)[0].tokens)


class MergeRecorder:
    """Records the batched model's chosen merges and alignment picks (batch of one)."""

    enabled = True

    def __init__(self) -> None:
        self.levels: list[dict] = []

    def begin_level(self, level, plan, init_scores, init_valid) -> None:
        self.levels.append({"chunk_sizes": list(plan.length), "merges": [[] for _ in plan.length]})

    def inner_step(self, *, active, parent, pos, scores, valid, **_) -> None:
        merges = self.levels[-1]["merges"]
        parent, pos = parent.tolist(), pos.tolist()
        scores, valid = scores.tolist(), valid.tolist()
        for c, is_active in enumerate(active.tolist()):
            if is_active:
                merges[c].append(
                    [
                        {
                            "parent": parent[c][k],
                            "position": pos[c][k],
                            "score": scores[c][k],
                            "valid": valid[c][k],
                        }
                        for k in range(len(parent[c]))
                    ]
                )

    def end_level(self, level, out, c_scores=None, c_valid=None, picks=None, slot_valid=None,
                  grid_mask=None) -> None:  # fmt: skip
        info = self.levels[-1]
        info["alignment"] = None
        if picks is not None:
            n_chunks = len(info["chunk_sizes"])
            info["alignment"] = {
                "picks": picks[0, :, :n_chunks].tolist(),
                "slot_valid": slot_valid[0].tolist(),
            }


def run_batched(model, toks: list[str], seed: int = 0, **settings):
    ids = torch.tensor([[TOKEN_TO_ID[t] for t in toks]])
    recorder = MergeRecorder()
    logits, out = model.forward_with_details(
        ids, ids != 0, seed, recorder=recorder if model.config.model_type != "bbt_grc" else None,
        **settings,
    )  # fmt: skip
    # forward returns logits in the model's dtype (float64 here); the head is deterministic in
    # eval mode, so recomputing them from the pooled root gives the same values.
    with torch.no_grad():
        logits64 = model.head(out.pooled)
    torch.testing.assert_close(logits, logits64)
    return logits[0], out, recorder.levels


def assert_same_search(batched: list[dict], ref: list[dict], include_invalid: bool) -> None:
    """Identical chunking, merges (parent beam, position, validity; scores close) and picks.

    ``include_invalid``: also compare the parent and position of invalid (filler) beams.
    """
    assert [lv["chunk_sizes"] for lv in batched] == [lv["chunk_sizes"] for lv in ref]
    for li, (b_lv, r_lv) in enumerate(zip(batched, ref, strict=True)):
        for c, (b_steps, r_steps) in enumerate(zip(b_lv["merges"], r_lv["merges"], strict=True)):
            assert len(b_steps) == len(r_steps), (li, c)
            for t, (b_beams, r_beams) in enumerate(zip(b_steps, r_steps, strict=True)):
                where = f"level {li} chunk {c} step {t}"
                assert [b["valid"] for b in b_beams] == [r["valid"] for r in r_beams], where
                for k, (b, r) in enumerate(zip(b_beams, r_beams, strict=True)):
                    if r["valid"] or include_invalid:
                        got = (b["parent"], b["position"])
                        assert got == (r["parent"], r["position"]), f"{where} beam {k}"
                    if r["valid"]:
                        assert b["score"] == pytest.approx(r["score"], rel=1e-6, abs=1e-6)
        b_al, r_al = b_lv["alignment"], r_lv["alignment"]
        assert (b_al is None) == (r_al is None), li
        if r_al is not None:
            assert b_al["slot_valid"] == r_al["slot_valid"], li
            for s, ok in enumerate(r_al["slot_valid"]):
                if ok:
                    assert b_al["picks"][s] == r_al["picks"][s], f"level {li} slot {s}"


# ------------------------------------------------------------------------------------------
# The full forward pass


CASES = [("rir_ebt_grc", a) for a in Alignment] + [
    ("ebt_grc", Alignment.SAMPLE),
    ("bt_grc", Alignment.SAMPLE),
    ("bbt_grc", Alignment.SAMPLE),
]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize(("model_type", "alignment"), CASES, ids=lambda x: str(x))
def test_batched_matches_reference(model_type: str, alignment: Alignment, n: int) -> None:
    model = tiny_model(model_type)
    toks = tokens_of_length(n, seed=n)
    seed = 1234 + n
    logits, out, b_levels = run_batched(model, toks, seed, alignment=alignment)
    ref = reference_forward(model, toks, seed=seed, alignment=alignment)
    torch.testing.assert_close(logits, ref["logits"], **TOL)
    assert out.depth == [ref["depth"]]
    if model_type == "bbt_grc":
        assert ref["levels"] == []
        return
    assert_same_search(b_levels, ref["levels"], include_invalid=alignment != Alignment.KBEST)
    # Final beams: validity, scores and pooling weights.
    valid = out.valid[0].tolist()
    assert valid == [b["valid"] for b in ref["final_beams"]]
    for k, b in enumerate(ref["final_beams"]):
        assert out.weights[0, k].item() == pytest.approx(b["weight"], rel=1e-4, abs=1e-6)
        if b["valid"]:
            assert out.scores[0, k].item() == pytest.approx(b["score"], rel=1e-6, abs=1e-6)


def test_reference_trees_cover_the_input() -> None:
    """Every valid final beam is a full binary tree over the tokens, in order."""
    model = tiny_model("rir_ebt_grc")
    toks = tokens_of_length(3 * W + 1, seed=3)
    ref = reference_forward(model, toks, seed=5)

    def leaves(t):
        return [t] if isinstance(t, int) else leaves(t[0]) + leaves(t[1])

    for b in ref["final_beams"]:
        if b["valid"]:
            assert leaves(b["tree"]) == list(range(len(toks)))
    assert sum(b["weight"] for b in ref["final_beams"]) == pytest.approx(1.0)


def test_reference_respects_overrides() -> None:
    """beam_size / chunk_width / alignment overrides act the same in both implementations."""
    model = tiny_model("rir_ebt_grc")
    toks = tokens_of_length(40, seed=7)
    for settings in (
        {"beam_size": 1},
        {"beam_size": 5, "alignment": "kbest"},
        {"chunk_width": 4, "alignment": "rank"},
        {"chunk_width": 100},
    ):
        logits, out, levels = run_batched(model, toks, 3, **settings)
        ref = reference_forward(model, toks, seed=3, **settings)
        torch.testing.assert_close(logits, ref["logits"], **TOL)
        assert_same_search(levels, ref["levels"], include_invalid=False)
        assert out.depth == [ref["depth"]]


@pytest.mark.parametrize("alignment", list(Alignment))
@pytest.mark.parametrize(("width", "beams"), [(2, 3), (3, 7)])
def test_tiny_chunks_and_wide_beams(alignment: Alignment, width: int, beams: int) -> None:
    """Chunks of 1-3 nodes: few valid beams, fillers everywhere, kbest with invalid slots."""
    model = tiny_model("rir_ebt_grc")
    saw_invalid_slot = False
    for n in (3, 4, 5, 7, 12, 23):
        toks = tokens_of_length(n, seed=n)
        settings = {"chunk_width": width, "beam_size": beams, "alignment": alignment}
        logits, out, levels = run_batched(model, toks, n, **settings)
        ref = reference_forward(model, toks, seed=n, **settings)
        torch.testing.assert_close(logits, ref["logits"], **TOL)
        assert_same_search(levels, ref["levels"], include_invalid=alignment != Alignment.KBEST)
        assert out.depth == [ref["depth"]]
        saw_invalid_slot |= any(
            not all(lv["alignment"]["slot_valid"]) for lv in ref["levels"] if lv["alignment"]
        )
    assert saw_invalid_slot == (alignment == Alignment.KBEST)


@pytest.mark.parametrize("model_type", ["rir_ebt_grc", "bt_grc"])
def test_exact_ties_go_to_the_lower_index(model_type: str) -> None:
    """A constant scorer makes every pair (and every candidate of equal beams) tie exactly."""
    torch.manual_seed(3)
    model = build_model(tiny_config(model_type, beam_size=4)).double().eval()
    scorer = model.encoder.inner.child_scorer or model.encoder.inner.parent_scorer
    with torch.no_grad():
        scorer.out.weight.zero_()
    for n in (5, 9, 16):
        toks = tokens_of_length(n, seed=n)
        for alignment in Alignment:
            logits, _, levels = run_batched(model, toks, n, alignment=alignment)
            ref = reference_forward(model, toks, seed=n, alignment=alignment)
            torch.testing.assert_close(logits, ref["logits"], **TOL)
            assert_same_search(levels, ref["levels"], include_invalid=alignment != "kbest")
    if model_type == "bt_grc":  # unchunked: beam 0 always merges pair 0, a left-branching tree
        want = 0
        for i in range(1, 16):
            want = [want, i]
        assert ref["final_beams"][0]["tree"] == want


def test_float64_model_keeps_float64_everywhere() -> None:
    """A float64 model computes in float64 end to end (tight agreement, 1e-10): nothing in
    the model rounds a float64 value to float32 (only half precision is upcast)."""
    model = tiny_model("rir_ebt_grc")
    toks = tokens_of_length(3 * W + 1, seed=3)
    logits, _, _ = run_batched(model, toks, 5)
    ref = reference_forward(model, toks, seed=5)
    torch.testing.assert_close(logits, ref["logits"], rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------------
# Pieces: chunk schedule and alignment, against the batched functions on random scores


def test_chunk_sizes() -> None:
    assert chunk_sizes(7, 5) == [7]  # 2n < 3W
    assert chunk_sizes(8, 5) == [5, 3]
    assert chunk_sizes(16, 5) == [5, 5, 5, 1]
    assert chunk_sizes(44, 30) == [44]
    assert chunk_sizes(45, 30) == [30, 15]
    assert chunk_sizes(1000, None) == [1000]


def _random_chunks(gen: random.Random, n_chunks: int, k: int) -> list[list[Beam]]:
    """Chunks whose valid beams are a prefix (as the inner search leaves them), sorted."""
    chunks = []
    for _ in range(n_chunks):
        n_valid = gen.randint(1, k)
        scores = sorted((gen.uniform(-6, 0) for _ in range(n_valid)), reverse=True)
        beams = [Beam([], [], s, True) for s in scores]
        beams += [Beam([], [], -1e9, False) for _ in range(k - n_valid)]
        chunks.append(beams)
    return chunks


def _batched_align(strategy, chunks, seed, level):
    k = len(chunks[0])
    scores = torch.tensor([[[b.score for b in beams] for beams in chunks]], dtype=torch.float64)
    valid = torch.tensor([[[b.valid for b in beams] for beams in chunks]])
    mask = torch.ones(1, len(chunks), dtype=torch.bool)
    picks, slot_valid = align(strategy, scores, valid, mask, torch.tensor([seed]), level, k)
    return picks[0].tolist(), slot_valid[0].tolist()


@pytest.mark.parametrize("strategy", list(Alignment))
def test_alignment_matches_batched(strategy: Alignment) -> None:
    gen = random.Random(0)
    for trial in range(200):
        chunks = _random_chunks(gen, gen.randint(2, 6), gen.randint(1, 5))
        seed, level = gen.randrange(2**40), gen.randrange(4)
        want_picks, want_valid = align_reference(strategy, chunks, seed, level)
        picks, slot_valid = _batched_align(strategy, chunks, seed, level)
        assert slot_valid == want_valid, trial
        for s, ok in enumerate(want_valid):
            if ok:
                assert picks[s] == want_picks[s], (trial, s)


def test_kbest_heap_matches_brute_force() -> None:
    """The reference's heap k-best is itself checked against enumerating every combination."""
    gen = random.Random(1)
    for _ in range(100):
        k = gen.randint(1, 5)
        chunks = _random_chunks(gen, gen.randint(1, 4), k)
        picks, slot_valid = align_reference(Alignment.KBEST, chunks, 0, 0)
        choices = [[b for b in range(k) if beams[b].valid] for beams in chunks]
        totals = sorted(
            (sum(chunks[c][b].score for c, b in enumerate(combo)) for combo in
             itertools.product(*choices)),
            reverse=True,
        )[:k]  # fmt: skip
        got = [sum(chunks[c][b].score for c, b in enumerate(p)) for p in picks]
        assert slot_valid == [True] * len(totals) + [False] * (k - len(totals))
        assert got[: len(totals)] == pytest.approx(totals)
        assert len({tuple(p) for p in picks[: len(totals)]}) == len(totals)  # distinct
