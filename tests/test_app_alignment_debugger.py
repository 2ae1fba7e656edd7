"""The Beam alignment page's debugger sections under AppTest (tiny random model): the four
strategies side by side, the slot table, the diff of two strategies, the counterfactual."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_helpers import figure as _figure
from streamlit.testing.v1 import AppTest

from app import alignment_compare as C
from app import state
from rir_core.counterfactual import Force, forced_run

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"  # 16 tokens: 4 chunks at W = 4
STRATEGIES = ("sample", "rank", "random", "kbest")


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setenv(state.MODEL_ENV, "random-small")


def _page(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page("pages/alignment.py").run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _table(at: AppTest, column: str):
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _traces(seed: int = 0) -> dict[str, dict]:
    model = state._random_model(small=True).model
    return {
        s: model.trace(CHUNKED, seed=seed, beam_size=3, chunk_width=4, alignment=s).to_dict()
        for s in STRATEGIES
    }


def test_four_strategies_side_by_side_with_answers_and_slots():
    at = _page(expr=CHUNKED, w="4", k="3", align="rank")
    fig = _figure(at, "The four strategies after level 0")
    assert [t["name"] for t in fig["data"]] == [f"picks {s}" for s in STRATEGIES]
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    traces = _traces()
    for s, title in zip(STRATEGIES, titles, strict=True):
        assert C.verdict(traces[s]) in title
    assert "(sidebar)" in titles[1] and "(sidebar)" not in titles[0]
    truth = traces["rank"]["ground_truth"]
    assert any(f"Ground truth: {truth}." in m.value for m in at.markdown)
    slots = _table(at, "non-best chunks")
    al = traces["rank"]["levels"][0]["alignment"]
    assert list(slots["non-best chunks"]) == [len(i.non_best) for i in C.slot_infos(al)]
    assert any("Slot by slot (rank)" in h.value for h in at.subheader)
    # The picture's colour scale is relative to each chunk's beams (rank by default).
    pic = _figure(at, "After level 0 (rank)")
    beams = next(t for t in pic["data"] if t["name"] == "chunk beams")
    assert beams["marker"]["cmin"] == 0 and beams["marker"]["cmax"] == 2
    at.radio(key="alignment.colour").set_value("gap").run()
    _ok(at)
    beams = next(
        t for t in _figure(at, "After level 0 (rank)")["data"] if t["name"] == "chunk beams"
    )
    assert beams["marker"]["cmax"] == 0 and beams["marker"]["cmin"] < 0


def test_diff_of_two_strategies():
    at = _page(expr=CHUNKED, w="4", k="3")
    assert at.selectbox(key="alignment.diff.a").value == "sample"
    at.selectbox(key="alignment.diff.b").select("kbest").run()
    _ok(at)
    fig = _figure(at, "Final beam weights: A = sample")
    assert [t["name"] for t in fig["data"]] == ["A sample", "B kbest"]
    weights = _table(at, "weight B")
    traces = _traces()
    assert list(weights["weight B"]) == [
        round(b["weight"], 4) for b in traces["kbest"]["final_beams"]
    ]
    at.selectbox(key="alignment.diff.b").select("sample").run()
    assert any("Pick two different strategies" in c.value for c in at.caption)


def _a_force_that_matters(model, trace) -> tuple[Force, object]:
    """The first forced pick (slot, chunk, beam order) that changes the final beam weights."""
    al = trace["levels"][0]["alignment"]
    base = [b["weight"] for b in trace["final_beams"]]
    for slot, sl in enumerate(al["slots"]):
        for chunk, taken in enumerate(sl["picks"]):
            for beam in range(3):
                if beam == taken or not al["chunk_valid"][chunk][beam]:
                    continue
                force = Force(0, slot, chunk, beam)
                out = forced_run(
                    model, CHUNKED, force, seed=2, beam_size=3, chunk_width=4, alignment="sample"
                )
                if out.weights != base:
                    return force, out
    raise AssertionError("no forced pick changes the answer here")


def test_counterfactual_rerun_matches_a_full_forced_run():
    model = state._random_model(small=True).model
    trace = _traces(2)["sample"]
    force, want = _a_force_that_matters(model, trace)
    at = _page(expr=CHUNKED, w="4", k="3", seed="2")
    at.number_input(key="alignment.cf.slot").set_value(force.slot).run()
    at.number_input(key="alignment.cf.chunk").set_value(force.chunk).run()
    at.number_input(key=f"alignment.cf.beam.{force.slot}.{force.chunk}").set_value(force.beam).run()
    at.checkbox(key="alignment.cf.check").check().run()
    at.button(key="alignment.cf.run").click().run()
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Forced"] == str(want.prediction)
    table = _table(at, "weight forced")
    base = [b["weight"] for b in trace["final_beams"]]
    assert list(table["change"]) == [
        C.fmt_delta(w - b) for w, b in zip(want.weights, base, strict=True)
    ]
    assert set(table["change"]) != {"0"}
    p = want.probabilities[want.prediction]
    assert any(f"(p = {p:.3f})" in c.value and "takes beam" in c.value for c in at.caption)
    assert any("exactly the same logits" in c.value for c in at.caption)


def test_counterfactual_refuses_a_beam_the_chunk_does_not_have():
    # 7 tokens at W = 4: chunks of 4 and 3 tokens; a 3-token chunk has only 2 trees (K = 3).
    at = _page(expr="[MAX 1 2 3 4 5 ]", w="4", k="3")
    at.number_input(key="alignment.cf.chunk").set_value(1).run()
    at.number_input(key="alignment.cf.beam.0.1").set_value(2).run()
    at.button(key="alignment.cf.run").click().run()
    _ok(at)
    assert [e.value for e in at.error] == [
        "Chunk 1 has no valid beam 2 (it has fewer than K beams)."
    ]


def test_dataset_mode_counts_disagreements_and_links_each():
    from urllib.parse import parse_qs, urlparse

    from rir_core.generate import Recipe, generate

    at = _page(expr=CHUNKED, w="4", k="3")
    at.slider(key="alignment.window").set_value((30, 60)).run()
    at.number_input(key="alignment.size").set_value(20).run()
    at.button(key="alignment.run_dataset").click().run()
    _ok(at)
    texts = [ex.text for ex in generate(Recipe(30, 60), 20, seed=0)]
    model = state._random_model(small=True).model
    preds = {
        s: model.predict(texts, seed=0, beam_size=3, chunk_width=4, alignment=s) for s in STRATEGIES
    }
    differ = [i for i in range(20) if len({preds[s][i] for s in STRATEGIES}) > 1]
    assert differ, "the tiny model's strategies agree on all 20: pick another window"
    assert any(
        f"Expressions where the strategies disagree: {len(differ)}** of 20" in m.value
        for m in at.markdown
    )
    table = [d.value for d in at.dataframe if "open" in d.value.columns][0]
    assert sorted(table["expression"]) == sorted(texts[i] for i in differ)
    for _, row in table.iterrows():
        assert len({row[s] for s in STRATEGIES}) > 1
        assert parse_qs(urlparse(row["open"]).query)["expr"] == [row["expression"]]
