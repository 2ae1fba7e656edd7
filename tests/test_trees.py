"""Trees as networkx graphs, their comparison with the gold tree, exports, compact drawings."""

from __future__ import annotations

import io
import json
import math

import networkx as nx

from app import exports
from app import figures as F
from app import trees as T
from rir_core.balanced import balanced_tree
from rir_core.generate import Recipe, generate
from rir_core.listops import parse

SHORT = "[MAX 2 9 [MIN 4 7 ] 0 ]"
TOKENS = SHORT.split()
# A binary tree over SHORT with [MIN 4 7 ] (tokens 3-6) as one node.
GOOD = [0, [1, [2, [[[3, [4, 5]], 6], [7, 8]]]]]
# One that merges "9 [MIN" (tokens 2, 3) across the [MIN bracket.
BAD = [[0, 1], [[2, 3], [[4, 5], [6, [7, 8]]]]]


def test_graphs_are_trees_with_spans_in_preorder():
    gold = T.gold_tree_graph(parse(SHORT), TOKENS)
    model = T.binary_tree_graph(GOOD, TOKENS, [[0, 9], [3, 7]])
    for g in (gold, model):
        assert nx.is_arborescence(g)
        assert g.nodes[0]["first"] == 0 and g.nodes[0]["last"] == 9
        leaves = [n for n, d in g.nodes(data=True) if d["leaf"]]
        assert [g.nodes[n]["label"] for n in leaves] == TOKENS  # pre-order: token order
        for parent, child in g.edges():  # a parent covers its children and is taller
            p, c = g.nodes[parent], g.nodes[child]
            assert p["first"] <= c["first"] and c["last"] <= p["last"]
            assert p["height"] > c["height"]
    assert model.number_of_nodes() == 2 * 9 - 1
    assert sorted(T.constituents(gold)) == [(0, 9), (3, 7)]
    assert gold.nodes[0]["label"] == "MAX=9"
    assert [model.nodes[n]["gold"] for n in model if not model.nodes[n]["leaf"]].count(True) == 2


def test_comparison_with_the_gold_tree():
    gold = T.gold_tree_graph(parse(SHORT), TOKENS)
    good = T.compare_with_gold(T.binary_tree_graph(GOOD, TOKENS), gold)
    assert (good.gold, good.found, good.recall) == (2, 2, 1.0)
    assert good.crossing == 0 and good.respects == 1.0 and good.missing == []
    bad = T.compare_with_gold(T.binary_tree_graph(BAD, TOKENS), gold)
    assert bad.found == 1 and bad.missing == [(3, 7)]  # the root is found, [MIN ...] is not
    assert (2, 4) in bad.crossing_spans  # "9 [MIN" joins tokens outside and inside [MIN
    assert bad.crossing == len(bad.crossing_spans) and 0 < bad.respects < 1
    assert math.isclose(bad.respects, 1 - bad.crossing / 8)


def test_dot_export():
    dot = T.to_dot(T.gold_tree_graph(parse(SHORT), TOKENS), "gold")
    assert dot.startswith("digraph gold {") and "ordering=out" in dot
    assert '0 [label="MAX=9"' in dot and "0 -> 1" in dot
    assert "rank=same" in dot  # the tokens on one row
    model = T.to_dot(T.binary_tree_graph(GOOD, TOKENS, [[0, 9], [3, 7]]))
    assert model.count("->") == 16 + 8  # 16 tree edges + 8 invisible token-order edges
    assert model.count("#cfe8d6") == 2  # the two gold constituents are green


def test_graphml_round_trip():
    graph = T.binary_tree_graph(GOOD, TOKENS, [[0, 9], [3, 7]])
    back = nx.read_graphml(io.BytesIO(T.to_graphml(graph).encode()))
    assert back.number_of_nodes() == graph.number_of_nodes()
    assert back.number_of_edges() == graph.number_of_edges()
    assert back.nodes["0"]["first"] == 0 and back.nodes["0"]["last"] == 9
    assert back.nodes["0"]["gold"] is True and back.graph["kind"] == "model"


def test_long_trees_are_fast_and_compact():
    text = generate(Recipe(950, 1000), 1, seed=7)[0].text
    tokens = text.split()
    n = len(tokens)
    graph = T.binary_tree_graph(balanced_tree(n), tokens)
    cmp = T.compare_with_gold(graph, T.gold_tree_graph(parse(text), tokens))
    assert cmp.merges == n - 1 and cmp.found <= cmp.gold
    layout = F.binary_tree_layout(balanced_tree(n), tokens)
    w = F.auto_min_span(layout)
    compact = F.compact_layout(layout, w)
    assert len(compact) <= F.TREE_NODE_BUDGET < len(layout)
    assert F.auto_min_span(layout, budget=len(layout)) == 1
    # Every drawn node keeps its span; collapsed nodes are internal and narrower than w.
    assert set(compact.spans) <= set(layout.spans)
    assert all(
        not compact.is_leaf[i] and compact.spans[i][1] - compact.spans[i][0] < w
        for i in compact.collapsed
    )
    # The drawn nodes and the collapsed subtrees together still cover every token.
    covered = set()
    for i in range(len(compact)):
        if compact.is_leaf[i] or i in compact.collapsed:
            covered.update(range(*compact.spans[i]))
    assert covered == set(range(n))
    fig = F.beam_tree_figure(balanced_tree(n), tokens, [], 0.0, "t", min_span=None)
    names = [t.name for t in fig.data]
    assert "collapsed subtrees" in names and "collapsed" in fig.layout.title.text
    inner = next(t for t in fig.data if t.name == "internal nodes")
    assert "triangle-up" in list(inner.marker.symbol)
    full = F.beam_tree_figure(balanced_tree(n), tokens, [], 0.0, "t", min_span=1)
    assert "collapsed subtrees" not in [t.name for t in full.data]


def test_trace_json_is_strict_json():
    trace = {
        "tokens": ["[MAX", "2", "]"],
        "settings": {"beam_size": 3, "chunk_width": 30, "alignment": "kbest", "seed": 4},
        "scores": [0.5, float("-inf"), float("nan")],
    }
    data = json.loads(exports.trace_json(trace))
    assert data["scores"] == [0.5, None, None]
    assert exports.file_stem(trace) == "rir-trace-3tok-k3-w30-kbest-seed4"


def _levels(n: int, width: int) -> list[dict]:
    """The outer levels' nodes and chunks as a trace has them (``rir_core.outer.schedule``)."""
    from rir_core.outer import schedule

    levels, nodes = [], [(i, i + 1) for i in range(n)]
    for sizes in schedule(n, width):
        chunks, i = [], 0
        for size in sizes:
            chunks.append((nodes[i][0], nodes[i + size - 1][1]))
            i += size
        levels.append({"nodes": nodes, "chunks": chunks})
        nodes = chunks
    return levels


def test_reachable_spans_are_inside_a_chunk_or_whole_nodes_of_a_level():
    """16 tokens, W = 4: four chunks of 4 tokens, then one chunk of those four nodes."""
    levels = _levels(16, 4)
    assert [lv["chunks"] for lv in levels] == [[(0, 4), (4, 8), (8, 12), (12, 16)], [(0, 16)]]
    assert T.chunk_boundaries(levels) == [4, 8, 12]
    assert T.reachable((1, 3), levels) and T.reachable((0, 4), levels)  # inside chunk 0
    assert T.reachable((4, 12), levels) and T.reachable((0, 16), levels)  # whole chunks joined
    assert not T.reachable((3, 7), levels)  # cuts the boundary before token 4
    assert not T.reachable((4, 10), levels)  # ends inside chunk 2's node of level 1
    assert T.reachable((5, 6), levels)  # a token
    # One chunk (the input under 1.5 W): everything is reachable.
    one = _levels(5, 4)
    assert len(one) == 1 and all(
        T.reachable((a, b), one) for a in range(5) for b in range(a + 1, 6)
    )
    assert T.chunk_boundaries(one) == []


def test_brute_force_agrees_with_reachable():
    """Every span of every tree RIR can build (any tree inside each chunk, then the chunks'
    nodes joined by the level above) is reachable, and nothing else is."""
    import itertools

    levels = _levels(10, 3)  # chunks of 3, 3, 4 tokens, then one chunk of 3 nodes

    def spans_of(nodes: list[tuple[int, int]]) -> set[tuple[int, int]]:
        # All contiguous runs of a chunk's nodes: what some binary tree over the chunk has.
        return {(nodes[i][0], nodes[j][1]) for i, j in itertools.combinations_with_replacement(
            range(len(nodes)), 2)}  # fmt: skip

    buildable: set[tuple[int, int]] = set()
    for lv in levels:
        for a, b in lv["chunks"]:
            buildable |= spans_of([n for n in lv["nodes"] if a <= n[0] and n[1] <= b])
    for a in range(10):
        for b in range(a + 1, 11):
            assert T.reachable((a, b), levels) == ((a, b) in buildable), (a, b)


def test_chunk_recall_splits_the_gold_operators():
    text = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"  # [MIN 4 7 ] is tokens 3-6
    tokens = text.split()
    gold = sorted(T.constituents(T.gold_tree_graph(parse(text), tokens)))
    assert gold == [(0, 16), (3, 7), (8, 12)]
    levels = _levels(16, 4)
    tree = [[[0, [1, 2]], [[3, 4], [5, 6]]], [[[7, 8], [9, [10, 11]]], [12, [13, [14, 15]]]]]
    spans = T.constituents(T.binary_tree_graph(tree, tokens))
    recall = T.chunk_recall(spans, gold, levels)
    assert (recall.inside, recall.crossing) == (2, [(3, 7)])
    assert recall.found == 1 and recall.recall == 0.5  # (0, 16) yes; (8, 12) is not a node
    assert T.chunk_recall(set(), [], levels).recall == 1.0


def test_every_node_the_model_builds_is_reachable():
    """The definition checked on what the model computed: every node of every final beam of a
    chunked trace (three levels at W = 5) is reachable, and the trace's levels are ours."""
    from model_helpers import tiny_model

    from rir_core.trace import tree_spans

    text = generate(Recipe(60, 70), 1, seed=5)[0].text
    trace = tiny_model().trace(text, seed=0).to_dict()
    levels = trace["levels"]
    assert len(levels) >= 3
    ours = _levels(len(trace["tokens"]), 5)
    assert [[list(c) for c in lv["chunks"]] for lv in levels] == [
        [list(c) for c in lv["chunks"]] for lv in ours
    ]
    for beam in trace["final_beams"]:
        assert all(T.reachable(s, levels) for s in tree_spans(beam["tree"]))
