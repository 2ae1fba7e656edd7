"""The beam-alignment debugger's data: the picture's lines, mass kept, diagnostics, batches."""

from __future__ import annotations

import math

import pytest
from model_helpers import seeded_small_model

from app import alignment_lab as A
from rir_core.generate import Recipe, generate

# 16 tokens; with chunk width 4: four chunks at level 0, one alignment.
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"


@pytest.fixture(scope="module")
def model():
    return seeded_small_model()


@pytest.fixture(scope="module")
def traces(model):
    return {a: model.trace(CHUNKED, chunk_width=4, alignment=a).to_dict() for a in A.STRATEGIES}


def synthetic(picks, scores, valid_slots=None):
    """A one-level trace whose alignment has the given picks (K x C) and chunk scores (C x K):
    chunk c covers tokens [2c, 2c + 2)."""
    k, c = len(scores[0]), len(scores)
    probs = []
    for row in scores:
        z = [math.exp(s) for s in row]
        probs.append([x / sum(z) for x in z])
    valid_slots = valid_slots or [True] * len(picks)
    best = [max(range(k), key=row.__getitem__) for row in scores]
    slots = [
        {"picks": p, "score": sum(scores[ci][b] for ci, b in enumerate(p)), "valid": v}
        for p, v in zip(picks, valid_slots, strict=True)
    ]
    return {
        "tokens": [str(i % 10) for i in range(2 * c)],
        "gold_spans": [],
        "final_beams": [],
        "levels": [
            {
                "level": 0,
                "chunks": [[2 * i, 2 * i + 2] for i in range(c)],
                "chunk_details": [
                    {
                        "final_beams": [
                            {"tree": [2 * i, 2 * i + 1], "valid": True, "score": scores[i][b]}
                            for b in range(k)
                        ]
                    }
                    for i in range(c)
                ],
                "alignment": {
                    "chunk_scores": scores,
                    "chunk_valid": [[True] * k for _ in range(c)],
                    "chunk_probs": probs,
                    "slots": slots,
                    "best_combination": best,
                    "best_kept": any(s["picks"] == best and s["valid"] for s in slots),
                },
            }
        ],
    }


# -- the picture ------------------------------------------------------------------------------


def test_lines_join_each_picked_beam_to_the_slot_it_fills():
    picks = [[0, 0, 0], [1, 0, 1], [0, 1, 1]]  # slot s takes beam picks[s][c] of chunk c
    trace = synthetic(picks, [[-1.0, -2.0, -3.0], [-0.5, -3.0, -4.0], [-1.0, -1.5, -2.0]])
    data = A.picture_data(trace, 0)
    assert sorted(data.lines) == sorted(
        (c, b, s) for s, row in enumerate(picks) for c, b in enumerate(row)
    )
    fig = A.alignment_figure(data, "sample")
    for s, row in enumerate(picks):
        line = next(t for t in fig.data if t.name == f"slot {s}")
        xs, ys = list(line.x), list(line.y)
        segments = [(xs[i : i + 2], ys[i : i + 2]) for i in range(0, len(xs), 3)]
        assert len(segments) == len(row)  # one line per chunk
        for c, (sx, sy) in enumerate(segments):
            # from beam picks[s][c] in chunk c's column (top block) to slot s's row (bottom)
            assert sx == [c + A.X_BEAM, c + A.X_SLOT]
            assert sy == [row[c], A.slot_row(data, s)]
    beams = next(t for t in fig.data if t.name == "chunk beams")
    assert len(beams.x) == 3 * 3  # C x K markers
    assert "taken by slot 0, slot 2" in beams.hovertext[0]  # chunk 0, beam 0
    slots = next(t for t in fig.data if t.name == "slots")
    assert len(slots.x) == 3 * 3 and set(slots.y) == {A.slot_row(data, s) for s in range(3)}


def test_a_window_of_chunks_draws_only_their_columns():
    picks = [[0, 0, 0, 0], [1, 0, 1, 1]]
    trace = synthetic(picks, [[-1.0, -2.0]] * 4)
    data = A.picture_data(trace, 0)
    fig = A.alignment_figure(data, "sample", columns=(1, 3))
    beams = next(t for t in fig.data if t.name == "chunk beams")
    assert sorted({round(x - A.X_BEAM) for x in beams.x}) == [1, 2]
    for s, row in enumerate(picks):
        line = next(t for t in fig.data if t.name == f"slot {s}")
        starts = [(x, y) for x, y in zip(line.x[::3], line.y[::3], strict=True)]
        assert starts == [(c + A.X_BEAM, row[c]) for c in (1, 2)]
    assert "chunks 1-2 shown" in fig.layout.title.text
    assert list(fig.layout.xaxis.tickvals) == [1, 2]
    empty = A.alignment_figure(data, "sample", columns=(2, 2))  # at least one column
    assert list(empty.layout.xaxis.tickvals) == [2]


def test_picture_data_marks_best_beams_duplicates_and_subtrees():
    picks = [[0, 0], [1, 0], [1, 0]]  # slot 2 repeats slot 1
    trace = synthetic(picks, [[-1.0, -2.0, -9.0], [-0.5, -3.0, -4.0]])
    data = A.picture_data(trace, 0)
    assert [s["duplicate_of"] for s in data.slots] == [None, None, 1]
    best = [(d["chunk"], d["beam"]) for d in data.beams if d["best"]]
    assert best == [(0, 0), (1, 0)]
    assert data.beams[0]["subtree"] == "(0 1)" and data.beams[0]["span"] == (0, 2)
    fig = A.alignment_figure(data, "rank")
    dup = next(t for t in fig.data if t.name.startswith("slot 2"))
    assert dup.name == "slot 2 (= slot 1)" and dup.line.dash == "dot"
    with pytest.raises(ValueError):
        A.picture_data({**trace, "levels": [{**trace["levels"][0], "alignment": None}]}, 0)


def test_invalid_slots_draw_no_lines():
    trace = synthetic([[0, 0], [1, 1]], [[-1.0, -2.0], [-1.0, -2.0]], valid_slots=[True, False])
    data = A.picture_data(trace, 0)
    assert {s for _, _, s in data.lines} == {0}


def test_real_trace_picture_matches_the_recorded_picks(traces):
    for strategy, trace in traces.items():
        assert A.aligned_levels(trace) == [0]
        al = trace["levels"][0]["alignment"]
        data = A.picture_data(trace, 0)
        assert data.chunks == 4 and data.k == 3
        for c, b, s in data.lines:
            assert al["slots"][s]["picks"][c] == b
        assert len(data.lines) == sum(4 for s in al["slots"] if s["valid"])
        assert A.alignment_figure(data, strategy).layout.title.text.startswith("After level 0")


# -- what an alignment kept -------------------------------------------------------------------


def test_mass_kept_counts_distinct_valid_slots():
    scores = [[math.log(0.5), math.log(0.5)], [math.log(0.5), math.log(0.5)]]  # uniform
    al = synthetic([[0, 0], [1, 1]], scores)["levels"][0]["alignment"]
    assert math.isclose(A.mass_kept(al), 2 / 4)  # 2 of 4 equally likely combinations
    al = synthetic([[0, 0], [0, 0]], scores)["levels"][0]["alignment"]
    assert math.isclose(A.mass_kept(al), 1 / 4)  # a duplicate adds nothing
    every = synthetic([[0, 0], [0, 1], [1, 0], [1, 1]], scores)["levels"][0]["alignment"]
    assert math.isclose(A.mass_kept(every), 1.0)


def test_kbest_keeps_at_least_the_mass_of_the_others(traces):
    kept = {s: A.summarize(t).worst_mass for s, t in traces.items()}
    assert all(kept["kbest"] >= kept[s] - 1e-9 for s in A.STRATEGIES)
    assert A.summarize(traces["kbest"]).best_survived
    table = A.comparison_table([A.summarize(t) for t in traces.values()], "rank")
    assert list(table["strategy"]) == ["sample", "rank (sidebar)", "random", "kbest"]


def test_diagnostics_find_lost_best_duplicates_and_negligible_beams():
    scores = [[-1.0, -20.0], [-1.0, -2.0]]
    trace = synthetic([[1, 0], [1, 0]], scores)  # the best combination (0, 0) is never taken
    trace["final_beams"] = [
        {"weight": 0.9995, "valid": True},
        {"weight": 0.0005, "valid": True},
    ]
    found = A.diagnostics(trace)
    assert list(found["lost"]["after level"]) == [0]
    assert found["duplicates"].to_dict("records") == [
        {"after level": 0, "slot": 1, "same as slot": 0}
    ]
    whats = list(found["negligible"]["what"])
    assert "slot 0 took beam 1 of chunk 0" in whats and "beam 1" in whats
    assert found["gold"].empty


def test_chunk_gold_agreement_ignores_operators_cut_by_the_chunk():
    gold = [[0, 4], [2, 8]]  # [0, 4) inside the chunk [0, 6); [2, 8) crosses its boundary
    right = [[[0, 1], [2, 3]], [4, 5]]  # has [0, 4)
    wrong = [[0, [1, [2, [3, 4]]]], 5]  # [1, 5) etc. cross [0, 4)
    assert A.chunk_gold_agreement(right, (0, 6), gold) == (1, 1, 0)
    inside, found, crossing = A.chunk_gold_agreement(wrong, (0, 6), gold)
    assert (inside, found) == (1, 0) and crossing > 0


def test_tree_text():
    tokens = ["[MAX", "2", "9", "]"]
    assert A.tree_text([[0, 1], [2, 3]], tokens) == "(([MAX 2) (9 ]))"
    deep = 0
    for i in range(1, 400):
        deep = [deep, i % 4]
    assert A.tree_text(deep, tokens, limit=50).endswith(" …")


# -- many seeds, many expressions -------------------------------------------------------------


def test_predictions_over_seeds_match_single_runs(model):
    seeds = [0, 1, 2, 3, 4]
    preds = A.predictions_over_seeds(
        model, CHUNKED, seeds, batch_size=2, chunk_width=4, alignment="sample"
    )
    single = [model.predict([CHUNKED], seed=s, chunk_width=4, alignment="sample")[0] for s in seeds]
    assert preds == single
    kbest = A.predictions_over_seeds(model, CHUNKED, seeds, chunk_width=4, alignment="kbest")
    assert len(set(kbest)) == 1  # kbest draws nothing


def test_run_dataset_reports_progress_and_accuracy(model):
    examples = generate(Recipe(10, 40), 12, seed=3)
    steps = list(
        A.run_dataset(
            model, examples, A.STRATEGIES, seed=0, beam_size=3, chunk_width=4, batch_size=5
        )
    )
    assert [d for d, _, _ in steps][-1] == 12 * 4 and all(t == 48 for _, t, _ in steps)
    run = steps[-1][2]
    assert run is not None and all(r is None for _, _, r in steps[:-1])
    for s in A.STRATEGIES:
        expected = model.predict(
            [ex.text for ex in examples], seed=0, beam_size=3, chunk_width=4, alignment=s
        )
        assert run.predictions[s] == expected
    table = run.accuracy_table(10)
    overall = table[table["tokens"] == "all"].iloc[0]
    assert overall["n"] == 12
    for s in A.STRATEGIES:
        hits = sum(p == y for p, y in zip(run.predictions[s], run.labels, strict=True))
        assert math.isclose(overall[s], round(100 * hits / 12, 1))
    assert sum(table[table["tokens"] != "all"]["n"]) == 12
    fails = run.failures()
    assert all(any(run.predictions[s][i] != run.labels[i] for s in A.STRATEGIES) for i in fails)
    stats = run.bucket_stats(10)
    assert [r["n"] for r in stats] == list(table["n"])
    fig = A.accuracy_figure(stats, A.STRATEGIES)
    assert [t.name for t in fig.data] == [f"accuracy {s}" for s in A.STRATEGIES]
    buckets = [r for r in stats if r["tokens"] != "all"]
    for s, t in zip(A.STRATEGIES, fig.data, strict=True):
        assert list(t.y) == [100 * r["hits"][s] / r["n"] for r in buckets]
        lo = [A.wilson_interval(r["hits"][s], r["n"])[0] for r in buckets]
        assert [y - m for y, m in zip(t.y, t.error_y.arrayminus, strict=True)] == pytest.approx(lo)
    # no two strategies share a point: the offsets keep equal accuracies apart
    points = {(x, s) for t, s in zip(fig.data, A.STRATEGIES, strict=True) for x in t.x}
    assert len({x for x, _ in points}) == len(points)
    assert list(fig.layout.xaxis.ticktext) == [f"{r['tokens']}<br>n = {r['n']}" for r in buckets]
    differ = run.disagreements()
    assert differ == sorted(
        (i for i in range(12) if len({run.predictions[s][i] for s in A.STRATEGIES}) > 1),
        key=lambda i: run.lengths[i],
    )


def test_wilson_interval():
    assert A.wilson_interval(0, 0) == (0.0, 100.0)
    lo, hi = A.wilson_interval(1, 1)  # one right out of one: far from certain
    assert lo == pytest.approx(20.65, abs=0.01) and hi == pytest.approx(100.0)
    lo, hi = A.wilson_interval(50, 100)
    assert (lo, hi) == (pytest.approx(40.38, abs=0.01), pytest.approx(59.62, abs=0.01))
    lo, hi = A.wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-9) and hi == pytest.approx(27.75, abs=0.01)


def test_seed_distribution_figure_counts():
    fig = A.seed_distribution_figure({"sample": [1, 1, 2], "kbest": [3, 3, 3]}, ground_truth=1)
    bars = {t.name: list(t.y) for t in fig.data}
    assert bars["seeds sample"][1] == 2 and bars["seeds sample"][2] == 1
    assert bars["seeds kbest"][3] == 3 and sum(bars["seeds kbest"]) == 3
