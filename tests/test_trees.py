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
