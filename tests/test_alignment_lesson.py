"""The alignment-page lesson (app/alignment_lesson.py): searched with the shipped model, cached
on its weights' hash, searched again when they change, and still a disagreement."""

from __future__ import annotations

import json

import pytest

from app import alignment_lesson as AL
from app import lessons as L
from rir_core.listops import evaluate
from rir_core.pretrained import PRETRAINED_DIR, WEIGHTS_FILE, pretrained_available


class FakeModel:
    """predict(): right for every strategy except on every 9th expression of 60+ tokens,
    where 'sample' is off by one (and 'random' too on every 18th)."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, texts, seed, chunk_width, alignment):
        self.calls += 1
        out = []
        for t in texts:
            label, n = evaluate(t), len(t.split())
            wrong = n >= 60 and n % 9 == 0 and alignment in ("sample", "random")
            wrong = wrong and (alignment == "sample" or n % 18 == 0)
            out.append((label + 1) % 10 if wrong else label)
        return out


def test_search_prefers_the_paper_against_kbest_then_the_shortest():
    fake = FakeModel()
    case = AL.search(AL.model_predict(fake), "hash", size=64)
    assert case is not None and case.searched == 64 and case.candidates >= 1
    n = len(case.expression.split())
    assert n >= 60 and n % 9 == 0
    assert case.predictions["kbest"] == case.label != case.predictions["sample"]
    # no shorter expression of the same search disagrees
    texts = [ex.text for ex in AL.generate(AL.RECIPE, 64, seed=AL.DATA_SEED)]
    shorter = [t for t in texts if 60 <= len(t.split()) < n and len(t.split()) % 9 == 0]
    assert not shorter
    agree = AL.search(lambda texts, a: [0] * len(texts), "hash", size=16)
    assert agree is None


def test_search_takes_the_first_candidate_a_forced_pick_can_flip():
    fake = FakeModel()
    best = AL.search(AL.model_predict(fake), "hash", size=128)
    asked = []

    def flips(expression, truth, answer):
        asked.append(expression)
        return len(asked) == 2  # the second candidate in the search's order

    case = AL.search(AL.model_predict(fake), "hash", size=128, flips=flips)
    assert case.candidates >= 2 and len(asked) == 2
    assert asked[0] == best.expression  # asked in the search's order, the best first
    assert case.expression == asked[1] != best.expression
    assert case.predictions["sample"] != case.label  # it is still a disagreement
    never = AL.search(AL.model_predict(fake), "hash", size=128, flips=lambda *a: False)
    assert never == best  # no candidate flips: the best one all the same


@pytest.mark.skipif(not pretrained_available(), reason="no shipped model in pretrained/")
def test_a_forced_pick_flips_the_shipped_models_lesson():
    """The searched lesson has the counterfactual the alignment page's lesson demonstrates."""
    from rir_core.pretrained import load_pretrained

    case = AL.lesson_case()
    flips = AL.model_flips(load_pretrained())
    assert flips(case.expression, case.label, case.predictions["sample"])
    # a one-chunk input has no alignment to force
    assert not flips("[MAX 2 9 [MIN 4 7 ] 0 ]", 9, 9)


def no_flips(model):
    """The fake model cannot be re-run with a forced pick: the search goes without the check."""
    return None


def test_the_cache_is_keyed_on_the_weights(tmp_path):
    weights, cache = tmp_path / "model.safetensors", tmp_path / "lesson.json"
    weights.write_bytes(b"first weights")
    fake = FakeModel()
    first = AL.lesson_case(weights, cache, load_model=lambda: fake, flips_of=no_flips)
    assert first is not None and fake.calls > 0
    stored = json.loads(cache.read_text())
    assert stored["weights_sha256"] == AL.weights_hash(weights) == first.weights_sha256
    calls = fake.calls
    assert AL.lesson_case(weights, cache, load_model=lambda: fake, flips_of=no_flips) == first
    assert fake.calls == calls  # read from the cache: no search
    weights.write_bytes(b"new weights")  # the shipped model changed
    again = AL.lesson_case(weights, cache, load_model=lambda: fake, flips_of=no_flips)
    assert fake.calls > calls and again.weights_sha256 != first.weights_sha256
    assert json.loads(cache.read_text())["weights_sha256"] == again.weights_sha256
    cache.write_text("{not json")  # a damaged cache is searched again, not a traceback
    calls = fake.calls
    assert AL.lesson_case(weights, cache, load_model=lambda: fake, flips_of=no_flips) == again
    assert fake.calls > calls
    assert AL.lesson_case(tmp_path / "missing.safetensors", cache) is None


def test_the_lesson_link_opens_the_searched_expression():
    view = L.lessons()["alignment-page"]
    case = AL.lesson_case()
    if case is None:
        assert view.expression == L.long_expression()  # no shipped model: the tour's own
        return
    assert view == AL.lesson_view(case)
    assert (view.page, view.seed, view.chunk_width, view.alignment) == (
        "alignment",
        0,
        30,
        "sample",
    )
    step = next(s for s in L.tour() if s.slug == "alignment")
    assert step.also == view


@pytest.mark.skipif(not pretrained_available(), reason="no shipped model in pretrained/")
def test_the_shipped_model_still_disagrees_on_the_lesson():
    """Runs the shipped model (searching again first if its weights changed since the cache)."""
    from rir_core.pretrained import load_pretrained

    case = AL.lesson_case()
    assert case is not None, "the strategies agree on every searched expression"
    assert case.weights_sha256 == AL.weights_hash(PRETRAINED_DIR / WEIGHTS_FILE)
    view = AL.lesson_view(case)
    model = load_pretrained()
    answers = {
        s: model.trace(
            view.expression, seed=view.seed, chunk_width=view.chunk_width, alignment=s
        ).prediction
        for s in AL.STRATEGIES
    }
    assert answers == case.predictions
    assert len(set(answers.values())) > 1
    truth = evaluate(view.expression)
    assert truth in answers.values() and any(p != truth for p in answers.values())
