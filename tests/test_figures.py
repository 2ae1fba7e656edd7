"""The app's figure builders, checked on their figure data (traces of a tiny random model)."""

from __future__ import annotations

import math

import pytest
from model_helpers import seeded_small_model

from app import figures as F
from rir_core.generate import Recipe, generate
from rir_core.listops import parse
from rir_core.trace import tree_span

SHORT = "[MAX 2 9 [MIN 4 7 ] 0 ]"
# 16 tokens; with chunk width 4 the outer recursion has two levels and one alignment.
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"


@pytest.fixture(scope="module")
def model():
    return seeded_small_model()


@pytest.fixture(scope="module")
def short(model):
    return model.trace(SHORT).to_dict()


@pytest.fixture(scope="module")
def chunked(model):
    return model.trace(CHUNKED, chunk_width=4).to_dict()


def _trace(fig, name):
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


# -- trees ------------------------------------------------------------------------------------


def test_beam_tree_has_one_marker_per_node_at_its_span(short):
    tokens, beam = short["tokens"], short["final_beams"][0]
    fig = F.beam_tree_figure(beam["tree"], tokens, short["gold_spans"], beam["score"], "t")
    leaves, inner = _trace(fig, "leaves"), _trace(fig, "internal nodes")
    n = len(tokens)
    assert len(leaves.x) == n and len(inner.x) == n - 1  # a full binary tree: 2n - 1 nodes
    assert sorted(leaves.x) == list(range(n)) and set(leaves.y) == {0}
    layout = F.binary_tree_layout(beam["tree"], tokens)
    spans = [s for s, leaf in zip(layout.spans, layout.is_leaf, strict=True) if not leaf]
    assert list(inner.x) == [(a + b - 1) / 2 for a, b in spans]  # above the middle of its span
    assert spans[0] == (0, n) and tree_span(beam["tree"]) == (0, n)
    assert max(inner.y) == layout.y[0]  # the root is the highest node


def test_beam_tree_hover_says_where_each_node_was_built(short):
    beam = short["final_beams"][0]
    fig = F.beam_tree_figure(
        beam["tree"], short["tokens"], short["gold_spans"], beam["score"], "t",
        built=beam["built"],
    )  # fmt: skip
    inner = _trace(fig, "internal nodes")
    layout = F.binary_tree_layout(beam["tree"], short["tokens"])
    spans = [s for s, leaf in zip(layout.spans, layout.is_leaf, strict=True) if not leaf]
    where = {(a, b): (lv, c, st) for a, b, lv, c, st in beam["built"]}
    for span, text in zip(spans, inner.hovertext, strict=True):
        lv, c, st = where[span]
        assert f"built at level {lv}, chunk {c}, merge step {st}" in text


def test_beam_tree_marks_gold_constituents_green(short):
    tokens = short["tokens"]
    # A tree that has the [MIN 4 7 ] constituent (tokens 3-6) as one node.
    tree = [0, [1, [2, [[[3, [4, 5]], 6], [7, 8]]]]]
    fig = F.beam_tree_figure(tree, tokens, short["gold_spans"], 0.0, "t")
    layout = F.binary_tree_layout(tree, tokens)
    inner = _trace(fig, "internal nodes")
    colors = dict(
        zip(
            [s for s, leaf in zip(layout.spans, layout.is_leaf, strict=True) if not leaf],
            inner.marker.color,
            strict=True,
        )
    )
    assert colors[(3, 7)] == F.GOLD and colors[(0, 9)] == F.GOLD  # [MIN ...] and the root
    assert colors[(4, 6)] == F.PRIMARY


def test_gold_tree_labels_operators_with_values():
    expr = parse(SHORT)
    tokens = SHORT.split()
    fig = F.gold_tree_figure(expr, tokens)
    leaves, inner = _trace(fig, "leaves"), _trace(fig, "internal nodes")
    assert sorted(leaves.x) == list(range(len(tokens)))  # every token is a leaf
    assert list(inner.text) == ["MAX=9", "MIN=4"]
    assert list(inner.x) == [4.0, 4.5]  # spans [0, 9) and [3, 7)
    assert list(inner.y) == [2, 1]
    edges, faint = _trace(fig, "edges"), _trace(fig, "bracket edges")
    assert len(edges.x) + len(faint.x) == 3 * (len(leaves.x) + len(inner.x) - 1)  # per child
    assert len(faint.x) == 3 * 4  # [MAX, ], [MIN and ] hang from their operators


def test_trees_do_not_recurse_and_long_inputs_hide_token_labels():
    n = 3000
    tree = 0
    for i in range(1, n):  # left-branching: height n - 1
        tree = [tree, i]
    layout = F.binary_tree_layout(tree, ["1"] * n)
    assert len(layout) == 2 * n - 1 and layout.y[0] == n - 1
    long_text = generate(Recipe(190, 210), 1, seed=0)[0].text
    tokens = long_text.split()
    fig = F.gold_tree_figure(parse(long_text), tokens)
    assert fig.layout.xaxis.ticktext is None  # > TOKEN_LABEL_LIMIT tokens: hover only
    short_fig = F.gold_tree_figure(parse(SHORT), SHORT.split())
    assert list(short_fig.layout.xaxis.ticktext) == SHORT.split()


@pytest.mark.parametrize(
    "view",
    [F.TreeView(), F.TreeView(label_px=16, plot_px=980), F.TreeView(label_px=16, plot_px=455)],
    ids=["page", "teacher", "teacher-half"],
)
def test_large_gold_trees_label_the_nodes_that_fit_without_overlap(view):
    """#18 item 4: operator labels on a 1,000-token gold tree where they fit: the root always,
    never two written over each other at the size they are drawn (teacher mode's 16 px labels
    on a projector-wide or half-wide plot too: fewer of them, still apart)."""
    text = generate(Recipe(950, 1000), 1, seed=7)[0].text
    tokens = text.split()
    fig = F.gold_tree_figure(parse(text), tokens, min_span=None, view=view)
    inner = _trace(fig, "internal nodes")
    assert inner.textfont.size == view.label_px
    root = max(range(len(inner.y)), key=inner.y.__getitem__)
    assert inner.text[root]  # the widest node is labelled first
    n = len(tokens)
    layout = F.TreeLayout(
        x=list(inner.x), y=list(inner.y), labels=list(inner.text),
        spans=[tuple(s) for s in inner.customdata],
    )  # fmt: skip
    labelled = [i for i, t in enumerate(inner.text) if t]
    assert 5 <= len(labelled) < len(inner.x)  # some chains do not fit
    boxes = F.label_boxes(layout, labelled, 0, n, max(inner.y), view)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2], (a, b)
    if view.label_px > F.LABEL_PX:  # larger letters: fewer labels than on the page
        page = _trace(F.gold_tree_figure(parse(text), tokens, min_span=None), "internal nodes")
        assert len(labelled) < sum(bool(t) for t in page.text)
    # The legend is on the figure: what the colours and triangles mean.
    names = {t.name for t in fig.data if t.legendgroup == "legend"}
    assert {F.LEGEND_GOLD_OP[0], F.LEGEND_COLLAPSED[0]} <= names


def test_a_window_of_a_long_tree_draws_every_node_inside_it():
    """#18 item 4: 'Show' a chunk of a 1,000-token input: every gold and model node whose span
    lies inside the window is drawn (nothing collapsed), none from outside, the window's tokens
    on the axis, and the model tree's nodes carry their span for a click to open."""
    text = generate(Recipe(950, 1000), 1, seed=7)[0].text
    tokens, expr = text.split(), parse(text)
    lo, hi = 90, 120
    view = F.TreeView(window=(lo, hi), label_px=16, plot_px=980)
    full = F.gold_tree_layout(expr, tokens)
    inside = sorted(s for s, leaf in zip(full.spans, full.is_leaf, strict=True)
                    if not leaf and lo <= s[0] and s[1] <= hi)  # fmt: skip
    fig = F.gold_tree_figure(expr, tokens, min_span=None, view=view)
    inner = _trace(fig, "internal nodes")
    assert sorted(tuple(s) for s in inner.customdata) == inside
    assert "collapsed subtrees" not in [t.name for t in fig.data]
    assert list(fig.layout.xaxis.ticktext) == tokens[lo:hi]
    assert f"tokens {lo}-{hi - 1}" in fig.layout.title.text
    tree = [[i, i + 1] for i in range(0, len(tokens) - 1, 2)]  # pairs, then a chain
    while len(tree) > 1:
        tree = [tree[0:2], *tree[2:]]
    model = F.beam_tree_figure(tree[0], tokens, [], 0.0, "t", min_span=None, view=view)
    spans = [tuple(s) for s in _trace(model, "internal nodes").customdata]
    assert spans == [(i, i + 2) for i in range(lo, hi, 2)]  # the pairs; the chain reaches out


# -- answer, depth ----------------------------------------------------------------------------


def test_probability_bars_sum_to_one_and_mark_prediction(short):
    fig = F.probability_figure(short["probabilities"], short["prediction"], short["ground_truth"])
    bars = _trace(fig, "probability")
    assert list(bars.x) == list(range(10))
    assert math.isclose(sum(bars.y), 1.0, rel_tol=1e-5)
    assert bars.marker.color[short["prediction"]] == F.PRIMARY
    assert bars.marker.line.color[short["ground_truth"]] == F.GOLD


def test_depth_figure_shows_the_trace_depth_and_bounds(chunked):
    d = chunked["depth"]
    bars = _trace(F.depth_figure(d), "depth")
    assert list(bars.y) == [d["performed"], d["rir_bound"], d["ebt"], d["balanced"]]
    assert d["performed"] == 3 + 3  # two levels of chunks of 4 nodes: 3 merges each


# -- outer recursion --------------------------------------------------------------------------


def test_outer_figure_rows_and_chunk_boundaries(chunked):
    levels, tokens = chunked["levels"], chunked["tokens"]
    assert len(levels) == 2
    fig = F.outer_levels_figure(levels, tokens, current_level=0)
    rows = [t for t in fig.data if t.name.startswith("level ")]
    assert len(rows) == len(levels)
    for lv, row in zip(levels, rows, strict=True):
        assert set(row.y) == {lv["level"]} and len(row.x) == len(lv["nodes"])
        assert [b + w for b, w in zip(row.base, row.x, strict=True)] == [
            b - 0.5 for _, b in lv["nodes"]
        ]
    bounds = _trace(fig, "chunk boundaries")
    xs = [x for x in bounds.x if x is not None]
    assert xs[::2] == [first - 0.5 for first, _ in levels[0]["chunks"][1:]]  # 3.5, 7.5, 11.5
    assert xs[::2] == [3.5, 7.5, 11.5]


def test_outer_figure_highlights_the_current_level(chunked):
    levels, tokens = chunked["levels"], chunked["tokens"]
    at0 = F.outer_levels_figure(levels, tokens, current_level=0)
    at1 = F.outer_levels_figure(levels, tokens, current_level=1)
    row0_at0, row0_at1 = _trace(at0, "level 0"), _trace(at1, "level 0")
    assert set(row0_at0.marker.color) == set(F.CHUNK_TONES)  # chunks alternate
    assert set(row0_at1.marker.color) == set(F.CHUNK_TONES_DIM)
    assert at0.layout.shapes[0].y0 == -0.5 and at1.layout.shapes[0].y0 == 0.5
    assert [cd[1] for cd in row0_at0.customdata] == F.chunk_of_nodes(levels[0])
    picked = _trace(F.outer_levels_figure(levels, tokens, 0, current_chunk=2), "level 0")
    chunks = F.chunk_of_nodes(levels[0])
    assert [c == F.CURRENT_CHUNK for c in picked.marker.color] == [c == 2 for c in chunks]
    assert picked.unselected.marker.opacity == 1  # a click selection does not dim the others


# -- inner recursion --------------------------------------------------------------------------


def _heat_rows(fig) -> dict[int, list[float]]:
    """Beam -> its pair probabilities in pair order, read off the heat strip's bars."""
    rows: dict[int, list[float]] = {}
    for k, j, p in _trace(fig, "pair probabilities").customdata:
        assert j == len(rows.setdefault(k, []))
        rows[k].append(p)
    return rows


def test_heat_strip_is_the_pair_probabilities(chunked):
    tokens = chunked["tokens"]
    detail = chunked["levels"][1]["chunk_details"][0]
    step = detail["steps"][0]
    fig = F.pair_heat_figure(step, tokens, detail["span"], only_valid=False)
    assert list(_heat_rows(fig).values()) == [b["pair_probs"] for b in step["beams"]]
    assert list(_trace(fig, "pair probabilities").marker.color) == [
        p for b in step["beams"] for p in b["pair_probs"]
    ]
    detail = chunked["levels"][0]["chunk_details"][0]
    first = detail["steps"][0]  # only beam 0 is alive
    fig = F.pair_heat_figure(first, tokens, detail["span"])
    valid = [b["pair_probs"] for b in first["beams"] if b["valid"]]
    assert list(_heat_rows(fig).values()) == valid and set(fig.data[0].y) == {0}
    assert all(math.isclose(sum(r), 1.0, rel_tol=1e-4) for r in valid)
    # The colour scale lies above the plot (one row of beams must not squash it).
    bar = fig.data[0].marker.colorbar
    assert bar.orientation == "h" and bar.y >= 1


def test_heat_strip_and_beam_rows_share_the_token_axis(chunked):
    """#18 item 5: a pair's cell runs from the middle of its left node to the middle of its
    right one, around the boundary where the beam rows figure puts its diamond, whatever the
    beam; both figures have one x range, one tick set and the same row labels."""
    tokens = chunked["tokens"]
    for lv in chunked["levels"]:
        for detail in lv["chunk_details"]:
            for step in detail["steps"]:
                heat = F.pair_heat_figure(step, tokens, detail["span"], only_valid=False)
                rows = F.beam_rows_figure(step, tokens, detail["span"], only_valid=False)
                bars = _trace(heat, "pair probabilities")
                for (k, j, _), base, width in zip(bars.customdata, bars.base, bars.x, strict=True):
                    left, right = step["beams"][k]["nodes"][j : j + 2]
                    assert base == (left[0] + left[1] - 1) / 2  # the left node's middle
                    assert base + width == (right[0] + right[1] - 1) / 2
                    assert base < left[1] - 0.5 < base + width  # around the boundary
                assert heat.layout.xaxis.range == rows.layout.xaxis.range
                assert heat.layout.xaxis.tickvals == rows.layout.xaxis.tickvals
                assert heat.layout.yaxis.ticktext == rows.layout.yaxis.ticktext
                hm, rm = _trace(heat, "merges"), _trace(rows, "merges")
                assert sorted(zip(hm.x, hm.y, strict=True)) == sorted(zip(rm.x, rm.y, strict=True))


def test_beam_rows_mark_the_merged_pairs(chunked):
    steps = chunked["levels"][0]["chunk_details"][0]["steps"]
    span, tokens = chunked["levels"][0]["chunks"][0], chunked["tokens"]
    for step in steps:
        fig = F.beam_rows_figure(step, tokens, span, only_valid=False)
        merges = _trace(fig, "merges")
        expected = []
        for ch in step["chosen"]:
            if ch["valid"]:
                nodes = step["beams"][ch["parent"]]["nodes"]
                expected.append((nodes[ch["position"]][1] - 0.5, ch["parent"]))
        assert sorted(zip(merges.x, merges.y, strict=True)) == sorted(expected)
        best = step["chosen"][0]
        row = _trace(fig, f"beam {best['parent']}")
        assert row.marker.color[best["position"]] == F.CHOSEN
        assert row.marker.color[best["position"] + 1] == F.CHOSEN
    colors = [
        tuple(_trace(F.beam_rows_figure(s, tokens, span), "beam 0").marker.color) for s in steps
    ]
    assert len(set(colors)) > 1  # another step highlights other nodes


def test_candidate_and_beam_tables(chunked):
    step = chunked["levels"][1]["chunk_details"][0]["steps"][0]
    table = F.candidates_table(step, only_valid=False)
    assert len(table) == len(step["candidates"])
    assert table["survived"].sum() == sum(c["survived"] for c in step["candidates"])
    valid = table[table["valid"]]
    assert list(valid["score"]) == sorted(valid["score"], reverse=True)
    kept = table[table["survived"]]
    assert (
        sorted(kept["new beam"].dropna().astype(int))
        == [n for n, ch in enumerate(step["chosen"]) if ch["valid"]]
        or kept.empty
    )
    beams = F.beams_table(step, only_valid=False)
    assert list(beams["score (log p)"]) == [round(b["score"], 3) for b in step["beams"]]


def test_final_beams_table(chunked):
    table = F.final_beams_table(chunked["final_beams"])
    assert len(table) == len(chunked["final_beams"])
    assert math.isclose(table["weight"].sum(), 1.0, abs_tol=1e-3)
    assert list(table["gold recall"]) == [
        round(b["gold_recall"], 3) for b in chunked["final_beams"]
    ]


def test_alignment_figures(chunked):
    al = chunked["levels"][0]["alignment"]
    picks = [t for t in F.alignment_picks_figure(al).data if t.type == "heatmap"][0]
    assert [list(r) for r in picks.z] == [s["picks"] for s in al["slots"]]
    probs = [t for t in F.alignment_probs_figure(al).data if t.type == "heatmap"][0]
    assert [list(r) for r in probs.z] == al["chunk_probs"]


def test_depth_curves_figure():
    fig = F.depth_curves_figure(30, n_max=1000, mark_n=100)
    rir = _trace(fig, "RIR schedule (1.5·W rule)")
    assert rir.y[list(rir.x).index(1000)] == 62  # SPEC 3: 62 merges at n = 1000
    assert rir.y[list(rir.x).index(100)] == 32


# -- text helpers -----------------------------------------------------------------------------


def test_caret_lines_point_at_the_position():
    line, caret = F.caret_lines("[MAX 2 9 [FOO 4 ] ]", 9)
    assert line == "[MAX 2 9 [FOO 4 ] ]" and caret == " " * 9 + "^"
    text = "[SM " + "1 " * 200 + "x " + "2 " * 200 + "]"
    pos = text.index("x")
    line, caret = F.caret_lines(text, pos, width=60)
    assert len(caret) - 1 == line.index("x")  # still under the x in a window of a long line
    assert line.startswith("… ") and line.endswith(" …") and len(line) < 70
    line, caret = F.caret_lines(text, len(text) - 1, width=60)  # near the end: no tail
    assert line.endswith("]") and len(caret) - 1 == len(line) - 1
    line, caret = F.caret_lines("[MAX\t2 ]", 4)
    assert "\t" not in line and caret == "    ^"


def test_model_summary():
    summary = F.model_summary(
        {
            "model_type": "rir_ebt_grc",
            "hidden_size": 64,
            "beam_size": 7,
            "chunk_width": 30,
            "use_s4d": True,
            "alignment": "sample",
        }
    )
    assert summary == "D=64 · S4D on · defaults K=7, W=30, sample alignment"


def test_levels_table_marks_the_level_shown(chunked):
    levels, width = chunked["levels"], chunked["settings"]["chunk_width"]
    assert len(levels) >= 2
    for current in range(len(levels)):
        table = F.levels_table(levels, width, current)
        assert list(table["shown"]) == ["▶" if i == current else "" for i in range(len(levels))]
        assert list(table["level"]) == list(range(len(levels)))
    assert set(F.levels_table(levels, width)["shown"]) == {""}


# ------------------------------------------------------------------------------------------
# Recorded accuracy of a checkpoint


SIDECAR_METRICS = {
    "dev": {"accuracy": 0.943, "n": 1000, "seed": 0},
    "len_200_300": {"accuracy": 0.45, "n": 200},
    "len_900_1000": {"accuracy": 0.35, "n": 200},
    "args_10": {"accuracy": 0.43, "n": 200},
    "test_iid": {"accuracy": 0.9, "n": 200},
    "broken": {"accuracy": "high"},
    "also_broken": 3,
}


def test_accuracy_line_names_each_recorded_split() -> None:
    line = F.accuracy_line(SIDECAR_METRICS)
    assert line.startswith("dev (2-100 tokens) 94.3% of 1,000 · len_200_300 (200-300 tokens) 45.0%")
    assert "args_10 (100-1,000 tokens, up to 10 arguments) 43.0% of 200" in line
    assert "broken" not in line
    assert F.accuracy_line({}) is None
    assert F.accuracy_line({"dev": {"accuracy": 1.5}}) is None


@pytest.mark.parametrize(
    ("n", "split", "warned"),
    [(12, "dev", False), (250, "len_200_300", True), (950, "len_900_1000", True), (150, None, 0)],
)
def test_accuracy_at_length_uses_the_split_of_that_length(n: int, split, warned) -> None:
    sentence = F.accuracy_at_length(SIDECAR_METRICS, n)
    if split is None:  # 101-199 tokens: only the mixed-length splits cover it
        assert sentence is None
        return
    assert f"(the {split} split, " in sentence
    assert ("often wrong" in sentence) is warned
    # With other search settings the figure is given as what it is, without the conclusion.
    other = F.accuracy_at_length(SIDECAR_METRICS, n, default_settings=False)
    assert f"(the {split} split, " in other and "settings now differ" in other
    assert "often wrong" not in other


def test_accuracies_recorded_with_other_settings_are_left_out() -> None:
    metrics = {"dev": {"accuracy": 0.5, "n": 100, "settings": {"chunk_width": 8}}}
    assert F.accuracy_line(metrics) is None
    assert F.accuracy_at_length(metrics, 12) is None
