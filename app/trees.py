"""Trees as networkx graphs: the model's binary trees and the parser's gold tree, compared with
each other and exported (Graphviz DOT, GraphML). Nothing here imports streamlit.

A tree graph is a ``networkx.DiGraph`` whose edges go from a parent to its children, nodes
numbered in pre-order (the root is 0, children left to right). Every node carries:

=========  ====================================================================================
label      the token of a leaf; ``OP=value`` for a gold operator; ``""`` for a model merge
first      the first token it covers
last       one past the last token it covers (the span is ``[first, last)``)
height     0 for a leaf, else 1 + the tallest child
leaf       whether it is a token
text       the tokens it covers (the middle of long spans elided)
=========  ====================================================================================

A model tree node also has ``gold`` (its span is a gold constituent). The graph's own attributes
say what it is: ``kind`` ("model" or "gold"), ``tokens`` (the token count) and ``name``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import graphviz
import networkx as nx

from app.figures import TreeLayout, binary_tree_layout, gold_tree_layout, span_text
from rir_core.listops import Expr


def _layout_graph(layout: TreeLayout, tokens: list[str], kind: str, name: str) -> nx.DiGraph:
    graph = nx.DiGraph(kind=kind, tokens=len(tokens), name=name)
    for i in range(len(layout)):
        first, last = layout.spans[i]
        graph.add_node(
            i,
            label=layout.labels[i],
            first=int(first),
            last=int(last),
            height=int(layout.y[i]),
            leaf=bool(layout.is_leaf[i]),
            text=span_text(tokens, (first, last)),
        )
        if layout.parent[i] >= 0:
            graph.add_edge(layout.parent[i], i)
    return graph


def binary_tree_graph(
    tree: Any, tokens: list[str], gold_spans: list[list[int]] | None = None, name: str = "beam"
) -> nx.DiGraph:
    """A model tree (a token index or ``[left, right]``) as a graph; ``gold_spans`` marks the
    nodes whose span is a gold constituent (attribute ``gold``)."""
    graph = _layout_graph(binary_tree_layout(tree, tokens), tokens, "model", name)
    gold = {tuple(s) for s in gold_spans or ()}
    for _, data in graph.nodes(data=True):
        data["gold"] = (data["first"], data["last"]) in gold and not data["leaf"]
    return graph


def gold_tree_graph(expr: Expr, tokens: list[str]) -> nx.DiGraph:
    """The parser's n-ary tree: an operator's children are its ``[OP`` token, its arguments and
    its ``]`` token, in token order."""
    return _layout_graph(gold_tree_layout(expr, tokens), tokens, "gold", "gold")


def constituents(graph: nx.DiGraph) -> set[tuple[int, int]]:
    """The spans of the internal nodes (what a bracketing of the tokens is made of)."""
    return {(d["first"], d["last"]) for _, d in graph.nodes(data=True) if not d["leaf"]}


def _crosses(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two spans overlap without one containing the other."""
    return a[0] < b[0] < a[1] < b[1] or b[0] < a[0] < b[1] < a[1]


@dataclass
class GoldComparison:
    """How a model tree relates to the gold tree.

    ``recall``: the share of gold operators whose whole span is one model node. ``respects``:
    the share of model merges that cross no gold bracket (a merge that joins tokens from
    inside an operator with tokens outside it crosses). A binary tree can be perfect on both
    while still having extra nodes: an n-ary operator has many binary bracketings.
    """

    gold: int  # gold operator constituents
    found: int  # ... that are a model node
    merges: int  # the model tree's internal nodes
    crossing: int  # ... that cross a gold bracket
    missing: list[tuple[int, int]] = field(default_factory=list)  # gold spans not found
    crossing_spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def respects(self) -> float:
        return 1.0 - self.crossing / self.merges if self.merges else 1.0


def compare_with_gold(model: nx.DiGraph, gold: nx.DiGraph) -> GoldComparison:
    """Structural comparison of a model tree graph with the gold tree graph (same tokens)."""
    if model.graph.get("tokens") != gold.graph.get("tokens"):
        raise ValueError("the two trees are over different token sequences.")
    model_spans = constituents(model)
    gold_spans = sorted(constituents(gold))
    missing = [s for s in gold_spans if s not in model_spans]
    crossing = sorted(m for m in model_spans if any(_crosses(m, g) for g in gold_spans))
    return GoldComparison(
        gold=len(gold_spans),
        found=len(gold_spans) - len(missing),
        merges=len(model_spans),
        crossing=len(crossing),
        missing=missing,
        crossing_spans=crossing,
    )


# --------------------------------------------------------------------------------------------
# Chunks: which constituents RIR can build at all


def chunk_boundaries(levels: list[dict[str, Any]]) -> list[int]:
    """The tokens that start a chunk of level 0 (all but the first chunk's): a boundary before
    token ``b`` is drawn at ``x = b - 0.5``. Later levels' chunks are unions of these."""
    return [first for first, _ in levels[0]["chunks"][1:]] if levels else []


def reachable(span: tuple[int, int], levels: list[dict[str, Any]]) -> bool:
    """Whether any tree RIR can build with these chunks has a node over ``span``.

    Every chunk is reduced to one node before the level above sees it, so a node is either
    inside one chunk of some level (the inner search may build any binary tree over a chunk's
    nodes) or a whole node of a level. A span that starts or ends inside a node of a level, or
    joins nodes of different chunks of the last level where it lines up with node edges, crosses
    a chunk boundary: unreachable by construction, whatever the model learns.
    """
    a, b = span
    for lv in levels:
        nodes = lv["nodes"]
        starts = {n[0]: i for i, n in enumerate(nodes)}
        ends = {n[1]: i for i, n in enumerate(nodes)}
        if a not in starts or b not in ends:
            return False  # cuts a node of this level, and so of every level above
        i, j = starts[a], ends[b]
        if i == j:
            return True  # a node of this level
        chunk_starts = [c[0] for c in lv["chunks"]]
        if bisect_right(chunk_starts, nodes[i][0]) == bisect_right(chunk_starts, nodes[j][0]):
            return True  # nodes of one chunk: the inner search can join them
    return False


@dataclass
class ChunkRecall:
    """Gold recall split by the chunks: operators inside one chunk, which the search can
    recover, and those across a chunk boundary, which no RIR tree can (see :func:`reachable`)."""

    inside: int  # gold operators that RIR can build
    found: int  # ... that the model tree has
    crossing: list[tuple[int, int]] = field(default_factory=list)  # the unreachable ones

    @property
    def recall(self) -> float:
        """Recall among the reachable operators (1.0 when there are none)."""
        return self.found / self.inside if self.inside else 1.0


def chunk_recall(
    model_spans: set[tuple[int, int]],
    gold_spans: list[list[int]] | list[tuple[int, int]],
    levels: list[dict[str, Any]],
) -> ChunkRecall:
    """Recall of ``gold_spans`` by a model tree's node spans, split by :func:`reachable`."""
    gold = [tuple(s) for s in gold_spans]
    crossing = sorted(s for s in gold if not reachable(s, levels))
    cut = set(crossing)
    inside = [s for s in gold if s not in cut]
    return ChunkRecall(len(inside), sum(s in model_spans for s in inside), crossing)


# --------------------------------------------------------------------------------------------
# Exports


def to_dot(graph: nx.DiGraph, title: str = "") -> str:
    """Graphviz DOT source (``dot -Tsvg tree.dot > tree.svg``): tokens in order on the bottom
    row, children in token order under their parent, gold constituents green."""
    dot = graphviz.Digraph(
        name=str(graph.graph.get("name", "tree")),
        graph_attr={"ordering": "out", "label": title, "labelloc": "t", "fontname": "Helvetica"},
        node_attr={"fontname": "Helvetica", "fontsize": "11"},
        edge_attr={"arrowhead": "none", "color": "#8a9aa8"},
    )
    leaves = []
    for node, d in graph.nodes(data=True):
        span = f"[{d['first']}, {d['last']})"
        if d["leaf"]:
            dot.node(str(node), d["label"], shape="plaintext", tooltip=span)
            leaves.append(node)
        else:
            green = d.get("gold") or graph.graph.get("kind") == "gold"
            dot.node(
                str(node),
                d["label"] or span,
                shape="box" if d["label"] else "circle",
                style="filled",
                fillcolor="#cfe8d6" if green else "#d6e4f0",
                tooltip=f"{span} {d['text']}",
                **({} if d["label"] else {"fontsize": "8", "width": "0.2"}),
            )
    for parent, child in graph.edges():
        dot.edge(str(parent), str(child))
    with dot.subgraph(name="tokens") as row:  # the tokens on one rank, in order
        row.attr(rank="same")
        for left, right in zip(leaves, leaves[1:], strict=False):
            row.edge(str(left), str(right), style="invis")
    return dot.source


def to_graphml(graph: nx.DiGraph) -> str:
    """GraphML (for Gephi, yEd, networkx.read_graphml): the node attributes listed above."""
    return "\n".join(nx.generate_graphml(graph, prettyprint=True)) + "\n"
