"""Counterfactual alignment (rir_core/counterfactual.py): a forced pick re-run from the stored
level state must equal a full run with the same forced pick, bit for bit, with the same seed."""

from __future__ import annotations

import pytest
import torch
from model_helpers import seeded_small_model

from rir_core.counterfactual import Force, Rerunner, forced_run
from rir_core.generate import Recipe, generate
from rir_core.outer import schedule

STRATEGIES = ("sample", "rank", "random", "kbest")
# 16 tokens; chunk width 4: four chunks, one alignment.
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"


@pytest.fixture(scope="module")
def model():
    return seeded_small_model()


@pytest.fixture(scope="module")
def two_levels() -> str:
    """A generated expression with two aligned levels at W = 4 (10+ chunks, then 3)."""
    text = generate(Recipe(36, 44), 1, seed=5)[0].text
    assert sum(len(s) > 1 for s in schedule(len(text.split()), 4)) == 2
    return text


def _logits(model, text: str, seed: int, **settings) -> torch.Tensor:
    ids, mask, lengths = model.encode_texts([text])
    with torch.inference_mode():
        return model(ids, mask, seed, lengths=lengths, **settings)[0]


@pytest.mark.parametrize("alignment", STRATEGIES)
def test_no_force_reproduces_the_model_exactly(model, alignment):
    settings = dict(chunk_width=4, alignment=alignment)
    want = _logits(model, CHUNKED, 7, **settings)
    assert torch.equal(forced_run(model, CHUNKED, None, seed=7, **settings).logits, want)
    assert torch.equal(Rerunner.record(model, CHUNKED, seed=7, **settings).rerun(None).logits, want)


def _choices(rr: Rerunner):
    """Every forced choice that changes a pick: (level, slot, chunk, beam)."""
    for level, st in rr.levels.items():
        k, c = st.picks.shape
        for s in range(k):
            if not st.slot_valid[s]:
                continue
            for ch in range(c):
                for b in range(k):
                    if st.valid[ch, b] and b != int(st.picks[s, ch]):
                        yield Force(level, s, ch, b)


@pytest.mark.parametrize("alignment", STRATEGIES)
def test_rerun_from_the_level_equals_a_full_forced_run(model, two_levels, alignment):
    settings = dict(chunk_width=4, alignment=alignment, seed=3)
    rr = Rerunner.record(model, two_levels, **settings)
    assert sorted(rr.levels) == [0, 1]
    forces = list(_choices(rr))
    # A sample of the choices at both levels, the first and last chunk included.
    picked = forces[:: max(1, len(forces) // 12)] + forces[-1:]
    assert {f.level for f in picked} == {0, 1}
    original = rr.rerun(None).logits
    moved = 0
    for force in picked:
        fast = rr.rerun(force)
        full = forced_run(model, two_levels, force, **settings)
        assert torch.equal(fast.logits, full.logits), force
        assert fast.weights == full.weights and fast.scores == full.scores, force
        moved += not torch.equal(fast.logits, original)
    assert moved > 0  # forcing a pick changes the answer's logits: the check is not vacuous


def test_forcing_the_chosen_pick_changes_nothing(model):
    rr = Rerunner.record(model, CHUNKED, seed=1, chunk_width=4, alignment="sample")
    st = rr.levels[0]
    same = Force(0, 2, 1, int(st.picks[2, 1]))
    assert torch.equal(rr.rerun(same).logits, rr.rerun(None).logits)


def test_the_recorded_picks_are_the_trace_picks(model):
    for alignment in STRATEGIES:
        rr = Rerunner.record(model, CHUNKED, seed=4, chunk_width=4, alignment=alignment)
        trace = model.trace(CHUNKED, seed=4, chunk_width=4, alignment=alignment).to_dict()
        al = trace["levels"][0]["alignment"]
        assert rr.levels[0].picks.tolist() == [sl["picks"] for sl in al["slots"]]
        assert rr.levels[0].scores.tolist() == al["chunk_scores"]


def test_bad_choices_get_one_sentence(model):
    rr = Rerunner.record(model, CHUNKED, seed=0, chunk_width=4, alignment="sample")
    cases = {
        Force(1, 0, 0, 0): "no alignment follows level 1",
        Force(0, 3, 0, 0): "slot 3 does not exist",
        Force(0, 0, 4, 0): "chunk 4 does not exist",
        Force(0, 0, 0, 5): "beam 5 does not exist",
    }
    for force, message in cases.items():
        with pytest.raises(ValueError, match=message):
            rr.rerun(force)
    with pytest.raises(ValueError, match="no alignment follows level 2"):
        forced_run(model, CHUNKED, Force(2, 0, 0, 0), chunk_width=4)
    single = Rerunner.record(model, "[MAX 1 2 ]", chunk_width=4)
    with pytest.raises(ValueError, match="single chunk"):
        single.rerun(None)


def test_invalid_beams_cannot_be_forced(model):
    # 7 tokens at W = 4: chunks of 4 and 3 tokens; K = 3. A 2-token chunk has one tree only.
    rr = Rerunner.record(model, "[MAX 1 2 3 4 5 ]", chunk_width=4, alignment="kbest")
    st = rr.levels[0]
    bad = [(c, b) for c in range(st.valid.shape[0]) for b in range(3) if not st.valid[c, b]]
    assert bad, "the 3-token chunk has 2 trees, fewer than K = 3: one beam must be invalid"
    c, b = bad[0]
    with pytest.raises(ValueError, match=f"chunk {c} has no valid beam {b}"):
        rr.rerun(Force(0, 0, c, b))
