"""Why strategies differ (app/alignment_compare.py): per-slot lists checked against the model's
own tensors, the four-panel figure, the diff of two strategies, the relative colour scales."""

from __future__ import annotations

import random

import pytest
import torch
from model_helpers import seeded_small_model
from test_alignment_lab import synthetic

from app import alignment_compare as C
from app import alignment_lab as A
from rir_core.counterfactual import Rerunner
from rir_core.generate import Recipe, generate

CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"  # 16 tokens: 4 chunks at W = 4


@pytest.fixture(scope="module")
def model():
    return seeded_small_model()


@pytest.fixture(scope="module")
def two_levels() -> str:
    return generate(Recipe(36, 44), 1, seed=5)[0].text  # two aligned levels at W = 4


@pytest.fixture(scope="module")
def traces(model):
    return {a: model.trace(CHUNKED, chunk_width=4, alignment=a).to_dict() for a in A.STRATEGIES}


def test_fmt_delta_keeps_enough_digits():
    assert C.fmt_delta(0.0) == "0"
    assert C.fmt_delta(-0.01234) == "-0.0123"
    assert C.fmt_delta(3.04e-6) == "+3.04e-06"
    assert C.fmt_delta(None) == "-"
    assert C.fmt_delta(-1e-7) != C.fmt_delta(-2e-7)  # tiny differences stay apart


def test_ranks_and_gaps_are_relative_to_the_chunks_own_beams():
    al = synthetic([[0, 0]], [[-1.0, -0.5, -3.0], [-2.0, -2.0, -2.25]])["levels"][0]["alignment"]
    al["chunk_valid"][1][2] = False
    assert A.chunk_ranks(al) == [[1, 0, 2], [0, 1, None]]  # ties: the lower index first
    assert A.chunk_gaps(al) == [[-0.5, 0.0, -2.5], [0.0, 0.0, None]]


@pytest.mark.parametrize("text_fixture", ["chunked", "two_levels"])
@pytest.mark.parametrize("alignment", A.STRATEGIES)
def test_per_slot_non_best_chunks_match_the_models_tensors(
    model, request, two_levels, alignment, text_fixture
):
    """The per-slot table read from the trace against the picks and scores the outer recursion
    itself handed to the recorder (rir_core.counterfactual.StateRecorder)."""
    text = CHUNKED if text_fixture == "chunked" else two_levels
    trace = model.trace(text, seed=2, chunk_width=4, alignment=alignment).to_dict()
    rr = Rerunner.record(model, text, seed=2, chunk_width=4, alignment=alignment)
    assert sorted(rr.levels) == A.aligned_levels(trace)
    for level, st in rr.levels.items():
        infos = C.slot_infos(trace["levels"][level]["alignment"])
        scores = st.scores.masked_fill(~st.valid, float("-inf"))  # (C, K)
        best = scores.argmax(-1)  # (C,): the first of equal maxima, as the trace's
        picks = st.picks  # (K, C)
        picked = st.scores.gather(1, picks.T).T.double()  # (K, C): the picked beams' scores
        for s, info in enumerate(infos):
            want = [c for c in range(picks.shape[1]) if picks[s, c] != best[c]]
            assert [c for c, *_ in info.non_best] == want, (level, s)
            assert [b for _, b, *_ in info.non_best] == [int(picks[s, c]) for c in want]
            assert all(r is not None and r > 0 for _, _, r, _ in info.non_best)
            assert all(g <= 0 for *_, g in info.non_best)
            delta = float(picked[s].sum() - picked[0].sum())
            assert info.delta == pytest.approx(delta, abs=1e-5)
            earlier = [j for j in range(s) if st.slot_valid[j] and torch.equal(picks[j], picks[s])]
            dup = earlier[0] if earlier and st.slot_valid[s] else None
            assert info.duplicate_of == dup, (level, s)
        table = C.slot_table(trace["levels"][level]["alignment"])
        assert list(table["non-best chunks"]) == [len(i.non_best) for i in infos]


def test_slot_table_on_a_known_alignment():
    picks = [[0, 0, 0], [1, 0, 2], [1, 0, 2]]
    trace = synthetic(picks, [[-1.0, -1.0001, -3.0], [-0.5, -3.0, -4.0], [-1.0, -1.5, -2.0]])
    table = C.slot_table(trace["levels"][0]["alignment"])
    assert list(table["non-best chunks"]) == [0, 2, 2]
    assert table["which (beam, rank, gap to the chunk's best)"][1] == (
        "chunk 0: beam 1 (rank 1, -1.00e-04); chunk 2: beam 2 (rank 2, -1.0000)"
    )
    assert list(table["score − slot 0"]) == ["0 (reference)", "-1.0001", "-1.0001"]
    assert list(table["duplicate of"]) == ["-", "-", "slot 1"]


def _many_chunks(n_chunks: int = 34, k: int = 7):
    rnd = random.Random(0)
    scores = [sorted((rnd.uniform(-3, 0) for _ in range(k)), reverse=True) for _ in range(n_chunks)]
    picks = [[0] * n_chunks] + [[rnd.randrange(k) for _ in range(n_chunks)] for _ in range(k - 1)]
    trace = synthetic(picks, scores)
    trace.update(
        prediction=3,
        ground_truth=4,
        probabilities=[0.05] * 3 + [0.55] + [0.05] * 6,
        settings={"alignment": "sample"},
    )
    return trace


def test_four_panels_with_answers_and_the_sidebar_framed(traces):
    fig = C.strategies_figure(traces, 0, "kbest")
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert [t.name for t in heat] == [f"picks {s}" for s in A.STRATEGIES]
    titles = [a.text for a in fig.layout.annotations]
    for s, title in zip(A.STRATEGIES, titles, strict=True):
        tr = traces[s]
        assert f"predicts {tr['prediction']} " in title and f"truth {tr['ground_truth']}" in title
        assert ("(sidebar)" in title) == (s == "kbest")
    assert len(fig.layout.shapes) == 1  # the frame around the sidebar's panel
    kbest = fig.get_subplot(2, 2)  # 4 chunks: the panels sit 2 x 2, kbest bottom right
    frame = fig.layout.shapes[0]
    assert frame.x0 < kbest.xaxis.domain[0] < kbest.xaxis.domain[1] < frame.x1
    assert frame.y0 < kbest.yaxis.domain[0] < kbest.yaxis.domain[1] < frame.y1
    for s, t in zip(A.STRATEGIES, heat, strict=True):
        al = traces[s]["levels"][0]["alignment"]
        ranks = A.chunk_ranks(al)
        assert [list(row) for row in t.z] == [
            [ranks[c][b] for c, b in enumerate(sl["picks"])] for sl in al["slots"]
        ]
        assert [list(row) for row in t.text] == [
            [str(b) for b in sl["picks"]] for sl in al["slots"]
        ]


def test_34_chunks_stay_readable():
    trace = _many_chunks()
    fig = C.strategies_figure({s: trace for s in A.STRATEGIES}, 0, "sample")
    heat = fig.data[0]
    assert len(heat.z[0]) == 34 and heat.texttemplate == "%{text}"  # every beam number written
    # 34 chunks: the panels are stacked, each as wide as the figure (a column ~30 px at 1280)
    assert [fig.get_subplot(r, 1).xaxis.domain for r in range(1, 5)] == [(0.0, 1.0)] * 4
    data = A.picture_data(trace, 0)
    for colour in ("rank", "gap", "p"):
        pic = A.alignment_figure(data, "sample", (0, 16), colour)
        beams = next(t for t in pic.data if t.name == "chunk beams")
        assert len(beams.x) == 16 * 7
    pic = A.alignment_figure(data, "sample", None, "rank")
    beams = next(t for t in pic.data if t.name == "chunk beams")
    assert list(beams.marker.color) == [d["rank"] for d in data.beams]
    assert beams.marker.cmin == 0 and beams.marker.cmax == 6
    gap = next(
        t for t in A.alignment_figure(data, "s", None, "gap").data if t.name == "chunk beams"
    )
    assert gap.marker.cmax == 0 and gap.marker.cmin == min(d["gap"] for d in data.beams)
    with pytest.raises(ValueError, match="colour must be"):
        A.alignment_figure(data, "sample", None, "hue")


def test_slot_labels_show_the_difference_to_slot_0():
    picks = [[0, 0], [1, 0], [1, 0]]
    trace = synthetic(picks, [[-1.0, -1.00002, -3.0], [-0.5, -3.0, -4.0]])
    fig = A.alignment_figure(A.picture_data(trace, 0), "sample")
    labels = list(fig.layout.yaxis.ticktext)
    assert labels[3:] == ["slot 0 (ref)", "slot 1 (-2.00e-05)", "slot 2 (-2.00e-05) dup"]


def test_diff_of_two_strategies(traces, model, two_levels):
    a, b = traces["sample"], traces["kbest"]
    table = C.diff_slots(a, b)
    al_a, al_b = a["levels"][0]["alignment"], b["levels"][0]["alignment"]
    differ = [s for s in range(3) if al_a["slots"][s]["picks"] != al_b["slots"][s]["picks"]]
    assert list(table["slot"]) == differ if differ else table.empty
    if differ:
        assert set(table["same chunk beams"]) == {True}  # level 0: the same chunk beams
    assert C.diff_slots(a, a).empty
    weights = C.diff_weights(a, b)
    assert list(weights["weight A"]) == [round(fb["weight"], 4) for fb in a["final_beams"]]
    fig = C.diff_figure(a, b)
    assert [t.name for t in fig.data] == ["A sample", "B kbest"]
    # Two aligned levels: above level 0 the chunk beams differ between strategies.
    ta = model.trace(two_levels, seed=2, chunk_width=4, alignment="sample").to_dict()
    tb = model.trace(two_levels, seed=2, chunk_width=4, alignment="rank").to_dict()
    both = C.diff_slots(ta, tb)
    assert set(both["after level"]) <= {0, 1}
    for _, row in both.iterrows():
        la = ta["levels"][row["after level"]]["alignment"]
        lb = tb["levels"][row["after level"]]["alignment"]
        assert row["same chunk beams"] == (la["chunk_scores"] == lb["chunk_scores"])
        assert row["chunks that differ"] == sum(
            x != y
            for x, y in zip(
                la["slots"][row["slot"]]["picks"], lb["slots"][row["slot"]]["picks"], strict=True
            )
        )


def test_default_diff_pair_prefers_a_disagreeing_strategy():
    def tr(p):
        return {"prediction": p}

    pair = C.disagreeing_pair(
        {"sample": tr(1), "rank": tr(1), "random": tr(2), "kbest": tr(3)}, "sample"
    )
    assert pair == ("sample", "random")
    same = {s: tr(1) for s in A.STRATEGIES}
    assert C.disagreeing_pair(same, "kbest") == ("kbest", "sample")


def test_the_builders_never_import_streamlit():
    import subprocess
    import sys

    code = (
        "import sys; import app.alignment_compare, app.alignment_lesson, "
        "rir_core.counterfactual; print('streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
