"""tests/probe_pair_roots.py: the level-0 roots of two-chunk inputs and the level-1 fits on them."""

from __future__ import annotations

import pytest
import torch
from probe_pair_roots import collect, fit_level1

from rir_core.generate import Recipe, generate
from rir_core.listops import evaluate
from rir_core.model import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model(hidden_size=32, scorer_slice=16, scorer_hidden=16, chunk_width=8, beam_size=3)
    return m.eval()


def test_batched_roots_are_each_inputs_own_and_the_answers_are_the_models(model) -> None:
    texts = [ex.text for ex in generate(Recipe(12, 16), 12, seed=3)]
    roots, bags, chunked, whole = collect(model, texts, 8, batch_size=5)
    assert roots.shape == (12, 2, 32) and bags.shape == (12, 2, 32)
    for i in (0, 6, 11):  # alone, in a batch of one: the same roots (example-major chunks)
        alone, _, answer, _ = collect(model, [texts[i]], 8)
        torch.testing.assert_close(alone[0], roots[i], atol=1e-5, rtol=1e-5)
        assert answer[0] == chunked[i]
    assert chunked == model.predict(texts, chunk_width=8)
    assert whole == model.predict(texts, chunk_width=10_000)


def test_a_batch_the_model_splits_into_groups_keeps_each_inputs_roots(model, monkeypatch) -> None:
    # Without autograd the outer recursion runs a large batch of chunks in groups, shortest
    # first; a small pool forces several groups here, as a big batch does at W 30.
    texts = [ex.text for ex in generate(Recipe(12, 16), 24, seed=4)]
    alone = torch.cat([collect(model, [t], 8)[0] for t in texts])
    monkeypatch.setattr(model.encoder, "pool_rows", 300)
    calls = []
    forward = model.encoder.inner.forward
    monkeypatch.setattr(
        model.encoder.inner, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k)
    )
    roots, _, chunked, _ = collect(model, texts, 8, batch_size=24)
    assert len(calls) > 2  # level 0 did run in several groups (and level 1 after it)
    torch.testing.assert_close(roots, alone, atol=1e-5, rtol=1e-5)
    assert chunked == model.predict(texts, chunk_width=8)


def test_an_input_not_cut_exactly_once_is_one_sentence(model) -> None:
    with pytest.raises(ValueError, match="an input of 20 tokens is not cut once at W 8"):
        collect(model, ["[SM " + "1 " * 18 + "]"], 8)


def test_the_level1_fit_learns_from_the_roots_and_leaves_the_model_alone(model) -> None:
    texts = [ex.text for ex in generate(Recipe(12, 16), 600, seed=5)]
    roots, _, _, _ = collect(model, texts, 8)
    roots = roots.clone()
    cell, head = model.encoder.inner.cell, model.head
    before = {k: v.clone() for k, v in [*cell.state_dict().items(), *head.state_dict().items()]}
    y = torch.tensor([evaluate(t) for t in texts])
    # A label the roots determine exactly: the fit must find it; one they cannot carry (a
    # shuffled copy) stays near chance.
    easy = (roots[:, 0, 0] > roots[:, 0, 0].median()).long()
    assert fit_level1(cell, head, roots, easy, fresh=True, epochs=30) > 0.9
    assert fit_level1(cell, head, roots, y[torch.randperm(600)], fresh=False, epochs=5) < 0.4
    after = {k: v for k, v in [*cell.state_dict().items(), *head.state_dict().items()]}
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
