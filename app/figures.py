"""Figure builders of the RIR Explorer: trace data in, plotly figures and tables out.

Nothing here imports streamlit: every builder is a plain function of the trace's plain data
(``Trace.to_dict()``, see ``rir_core/trace/``), so it can be unit-tested on its figure data and
reused outside the app. Pages only wire widgets to these builders.

Coordinates shared by every token-axis figure: token ``i`` sits at ``x = i``; a span
``[first, last)`` of tokens covers ``x`` from ``first - 0.5`` to ``last - 0.5``, so a chunk
boundary before token ``b`` is drawn at ``x = b - 0.5``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from rir_core.listops import Digit, Expr, Op, apply_operator

# Beyond this many tokens the token strings leave the x axis (they stay in the hover): the
# browser measures every tick label, ~3 ms each (100 labels made a figure 6x slower to draw).
TOKEN_LABEL_LIMIT = 40
# Trees with more nodes than this are drawn compact by default: small subtrees collapsed.
TREE_NODE_BUDGET = 500
# A level with more nodes than this is drawn as one box per chunk (a level summary).
LEVEL_NODE_LIMIT = 300
# How many tokens a hover text quotes from a span before eliding the middle.
HOVER_TOKENS = 12

PRIMARY = "#2f6f9f"  # the theme's primary colour (.streamlit/config.toml)
CHUNK_TONES = ("#2f6f9f", "#7fb0d9")  # chunks alternate between these on the current level
CHUNK_TONES_DIM = ("#c6d3de", "#e2e9ef")  # ... and these on the other levels
NEUTRAL = "#b8c7d3"
CHOSEN = "#e07b39"  # the pair merged into the best new beam at this step
KEPT = "#f5c6a0"  # the other pairs merged at this step (surviving candidates)
GOLD = "#3a9a5b"  # a node whose span is a gold constituent / the ground truth
BOUNDARY = "#c0392b"  # chunk boundaries
CURRENT_BAND = "rgba(255, 214, 102, 0.35)"  # the highlighted level row
CURRENT_CHUNK = "#f0a030"  # the chunk shown in the inner-recursion view
# Streamlit's click selection must not restyle the bars: the colours carry the highlight.
NO_SELECTION_STYLE = {"marker": {"opacity": 1.0}}
EDGE = "#8a9aa8"
FAINT_EDGE = "#dbe2e8"  # an operator's edges to its own brackets: there, but not structure
FONT = "monospace"


def _base_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    # Plain attribute assignments, not ``update_layout(**kw)``: the same figure, built 2-4x
    # faster (no magic-underscore path parsing), and every Explorer step draws several.
    layout = fig.layout
    layout.title = {"text": title, "font": {"size": 14}}
    layout.height = height
    layout.margin = {"l": 10, "r": 10, "t": 40, "b": 10}
    layout.plot_bgcolor = "white"
    layout.showlegend = False
    layout.hoverlabel = {"font_family": FONT}
    return fig


def _token_axis(fig: go.Figure, tokens: list[str], lo: int = 0, hi: int | None = None) -> None:
    """Token positions on x: the tokens as tick labels when few enough, else plain numbers."""
    hi = len(tokens) if hi is None else hi
    if hi - lo <= TOKEN_LABEL_LIMIT:
        few = hi - lo <= 20
        fig.update_xaxes(
            tickmode="array",
            tickvals=list(range(lo, hi)),
            ticktext=tokens[lo:hi],
            tickangle=0 if few else -90,
            tickfont={"family": FONT, "size": 11 if few else 9},
        )
    else:
        fig.update_xaxes(title_text="token position (hover for tokens)")
    fig.update_xaxes(range=[lo - 0.6, hi - 0.4], showgrid=False, zeroline=False)


def span_text(tokens: list[str], span: tuple[int, int] | list[int]) -> str:
    """The tokens of ``[first, last)`` joined by spaces, eliding the middle of long spans."""
    a, b = span
    if b - a <= HOVER_TOKENS:
        return " ".join(tokens[a:b])
    head, tail = HOVER_TOKENS * 2 // 3, HOVER_TOKENS // 3
    return (
        " ".join(tokens[a : a + head]) + f" … ({b - a} tokens) … " + " ".join(tokens[b - tail : b])
    )


# --------------------------------------------------------------------------------------------
# Error messages


# Punctuation that Streamlit's markdown (CommonMark, GFM, math, HTML) gives a meaning to.
_MARKDOWN_ACTIVE = frozenset("\\`*_{}<>#|$~&@")
# Shown in place of a character that would print nothing or move the text (see caret_lines).
UNPRINTABLE = "\N{REPLACEMENT CHARACTER}"


def md_escape(text: str) -> str:
    """``text`` for a Streamlit markdown element (``st.error``, ``st.warning``...), so that it
    shows exactly these characters.

    Messages quote what users typed (an expression's bad token, an uploaded file's name, a run
    id from the URL): backslash-escaping the punctuation above keeps ``**x**`` from turning
    bold, ``$x$`` into math and ``<script>`` from being anything but text, and the ``:`` of
    ``https://``, the ``.`` of ``www.`` and every ``@`` keep a bare address from becoming a link.
    A ``[`` is escaped only where a ``]`` follows it; without one it cannot open a link, an
    image or a ``:red[...]`` directive (so "unclosed '[MAX' ..." stays as it is). Line breaks
    become spaces: a message is one line. The pages never set ``unsafe_allow_html`` on such
    text (tests/test_hostile.py checks both).
    """
    out = []
    last_close = text.rfind("]")
    lower = text.lower()
    for i, ch in enumerate(text):
        if (
            ch in _MARKDOWN_ACTIVE
            or (ch == "[" and i < last_close)
            or (ch == ":" and text.startswith("//", i + 1))
            or (ch == "." and lower.endswith("www", 0, i))
        ):
            out.append("\\" + ch)
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def caret_lines(text: str, position: int, width: int = 100) -> tuple[str, str]:
    """The expression (a window of at most ``width`` characters) and a line with ``^`` under
    ``position``, for showing a parse error in monospace.

    Whitespace becomes a space (a tab would shift the caret); any other character that prints
    nothing or reorders the line (NUL and other controls, a zero-width space, a right-to-left
    override) becomes :data:`UNPRINTABLE`, so the caret stays under the character it names.
    """
    flat = "".join(" " if ch.isspace() else ch if ch.isprintable() else UNPRINTABLE for ch in text)
    position = max(0, min(position, len(flat)))
    start = max(0, min(position - width // 2, len(flat) - width))
    snippet = flat[start : start + width]
    prefix, caret_at = "", position - start
    if start > 0:
        prefix = "… "
        caret_at += len(prefix)
    if start + width < len(flat):
        snippet += " …"
    return prefix + snippet, " " * caret_at + "^"


# --------------------------------------------------------------------------------------------
# Trees: gold n-ary trees (from the parser) and the model's binary trees, drawn the same way


@dataclass
class TreeLayout:
    """Flat node list of a tree drawn over the token axis (pre-order: parents first).

    Leaves sit at their token's position with ``y = 0``; an internal node sits above the middle
    of its span, at ``y = ``its height (1 + the tallest child).
    """

    x: list[float] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    is_leaf: list[bool] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)  # -1 for the root
    bracket: set[int] = field(default_factory=set)  # leaves that are an operator's [OP or ]
    collapsed: set[int] = field(default_factory=set)  # nodes standing for a hidden subtree

    def __len__(self) -> int:
        return len(self.x)


def _finish_layout(layout: TreeLayout, children: list[list[int]]) -> TreeLayout:
    # Pre-order puts every child after its parent: walking backwards sees children first.
    for i in range(len(layout) - 1, -1, -1):
        if not layout.is_leaf[i]:
            kids = children[i]
            first = min(layout.spans[c][0] for c in kids)
            last = max(layout.spans[c][1] for c in kids)
            layout.spans[i] = (first, last)
            layout.y[i] = 1 + max(layout.y[c] for c in kids)
            layout.x[i] = (first + last - 1) / 2
    return layout


def binary_tree_layout(tree: Any, tokens: list[str]) -> TreeLayout:
    """Layout of a model tree: a token index or ``[left, right]`` (no Python recursion)."""
    layout, children = TreeLayout(), []
    stack: list[tuple[Any, int]] = [(tree, -1)]
    while stack:
        node, parent = stack.pop()
        idx = len(layout)
        leaf = isinstance(node, int)
        layout.x.append(float(node) if leaf else 0.0)
        layout.y.append(0)
        layout.spans.append((node, node + 1) if leaf else (0, 0))
        layout.labels.append(tokens[node] if leaf else "")
        layout.is_leaf.append(leaf)
        layout.parent.append(parent)
        children.append([])
        if parent >= 0:
            children[parent].append(idx)
        if not leaf:
            stack.extend((child, idx) for child in reversed(node))
    return _finish_layout(layout, children)


def gold_tree_layout(expr: Expr, tokens: list[str]) -> TreeLayout:
    """Layout of the parser's n-ary tree: an operator node has its own ``[OP`` token, its
    arguments and its ``]`` as children; internal nodes are labelled ``OP=value``."""
    layout, children = TreeLayout(), []
    values: dict[int, int] = {}  # node index -> value, digits and operators only
    ops: dict[int, Op] = {}
    stack: list[tuple[Expr | int, int]] = [(expr, -1)]
    while stack:
        node, parent = stack.pop()
        idx = len(layout)
        leaf = not isinstance(node, Op)
        pos = node if isinstance(node, int) else node.first
        layout.x.append(float(pos))
        layout.y.append(0)
        layout.spans.append((pos, pos + 1))
        layout.labels.append(tokens[pos] if leaf else node.name)
        layout.is_leaf.append(leaf)
        layout.parent.append(parent)
        children.append([])
        if parent >= 0:
            children[parent].append(idx)
        if isinstance(node, int):
            layout.bracket.add(idx)
        elif isinstance(node, Digit):
            values[idx] = node.value
        elif isinstance(node, Op):
            ops[idx] = node
            # Children in token order: the [OP token, the arguments, the ] token.
            stack.append((node.last - 1, idx))
            stack.extend((arg, idx) for arg in reversed(node.args))
            stack.append((node.first, idx))
    _finish_layout(layout, children)
    for idx in sorted(ops, reverse=True):  # children before parents
        args = [values[c] for c in children[idx] if c in values]
        values[idx] = apply_operator(ops[idx].name, args)
        layout.labels[idx] = f"{ops[idx].name}={values[idx]}"
    return layout


def compact_layout(layout: TreeLayout, min_span: int) -> TreeLayout:
    """The layout with every subtree narrower than ``min_span`` tokens (whose parent is not)
    collapsed into its root: a node in ``collapsed``, drawn as a triangle over its span.

    Leaves stay leaves; ``min_span <= 2`` hides nothing. Node order stays pre-order.
    """
    width = [b - a for a, b in layout.spans]
    keep: list[int] = []  # old index of every drawn node
    new_id: dict[int, int] = {}
    out = TreeLayout()
    for i, p in enumerate(layout.parent):
        if p >= 0 and (p not in new_id or new_id[p] in out.collapsed):
            continue  # inside a collapsed subtree (pre-order: parents come first)
        new_id[i] = len(keep)
        keep.append(i)
        out.x.append(layout.x[i])
        out.y.append(layout.y[i])
        out.spans.append(layout.spans[i])
        out.labels.append(layout.labels[i])
        out.is_leaf.append(layout.is_leaf[i])
        out.parent.append(new_id[p] if p >= 0 else -1)
        if i in layout.bracket:
            out.bracket.add(new_id[i])
        if not layout.is_leaf[i] and width[i] < min_span:
            out.collapsed.add(new_id[i])
    return out


def auto_min_span(layout: TreeLayout, budget: int = TREE_NODE_BUDGET) -> int:
    """The smallest collapse width (1, 2, 3, 4, 6, 8, 12, ...) that draws at most ``budget``
    nodes; 1 (everything) when the tree is small enough already."""
    if len(layout) <= budget:
        return 1
    widths = [b - a for a, b in layout.spans]
    candidates = [3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
    for w in candidates:
        # A node is drawn when its parent is drawn and at least w tokens wide.
        drawn = 0
        wide = [False] * len(layout)
        for i, p in enumerate(layout.parent):
            if p < 0 or wide[p]:
                drawn += 1
                wide[i] = widths[i] >= w and not layout.is_leaf[i]
        if drawn <= budget:
            return w
    return candidates[-1]


def window_layout(layout: TreeLayout, lo: int, hi: int) -> TreeLayout:
    """The nodes of ``layout`` whose whole span lies in tokens ``[lo, hi)``: a forest (a node
    whose parent reaches outside the window becomes a root, ``parent`` -1). Pre-order kept."""
    new_id: dict[int, int] = {}
    out = TreeLayout()
    for i, (a, b) in enumerate(layout.spans):
        if a < lo or b > hi:
            continue
        new_id[i] = len(out)
        p = layout.parent[i]
        out.x.append(layout.x[i])
        out.y.append(layout.y[i])
        out.spans.append((a, b))
        out.labels.append(layout.labels[i])
        out.is_leaf.append(layout.is_leaf[i])
        out.parent.append(new_id.get(p, -1) if p >= 0 else -1)
        if i in layout.bracket:
            out.bracket.add(new_id[i])
        if i in layout.collapsed:
            out.collapsed.add(new_id[i])
    return out


def tree_figure(
    layout: TreeLayout,
    tokens: list[str],
    title: str,
    node_colors: list[str] | None = None,
    extra_hover: list[str] | None = None,
    boundaries: list[int] | None = None,
    y_max: int | None = None,
    legend: list[tuple[str, str, str]] | None = None,
    view: TreeView | None = None,
) -> go.Figure:
    """Edges (traces ``edges`` and, fainter, ``bracket edges`` from an operator to its own
    ``[OP`` and ``]`` tokens), then one marker per node: traces ``leaves`` (y = 0) and
    ``internal nodes`` (one trace, colours per point). A compact layout (see
    :func:`compact_layout`) adds the trace ``collapsed subtrees``: a triangle from each collapsed
    node down to its span on the token axis; the node itself is a triangle marker.

    ``node_colors`` (one per node) colours the internal markers; ``extra_hover`` (one per node)
    is appended to each hover text. ``boundaries`` (tokens that start a chunk) adds the trace
    ``chunk boundaries``: a dotted red line before each. ``y_max`` fixes the height axis (two
    trees drawn side by side share one scale). ``legend``: ``(name, colour, symbol)`` of the
    marker kinds to explain on the figure itself (legend-only traces, legendgroup ``legend``).

    Internal nodes are labelled (an operator's ``OP=value``) where the label fits, at the
    font size and plot width of ``view``: where it overlaps no wider node's label
    (:func:`_labels_that_fit`). ``view.window``: only tokens ``[lo, hi)`` are shown (the
    layout is expected to hold only nodes inside them, see :func:`window_layout`).
    """
    view = view or TreeView()
    lo, hi = view.window or (0, len(tokens))
    n = hi - lo
    edges: dict[bool, tuple[list, list]] = {False: ([], []), True: ([], [])}
    for i, p in enumerate(layout.parent):
        if p >= 0:
            ex, ey = edges[i in layout.bracket]
            ex += [layout.x[i], layout.x[p], None]
            ey += [layout.y[i], layout.y[p], None]
    hover = [
        ("collapsed subtree · " if i in layout.collapsed else "")
        + f"{layout.labels[i] or 'node'} · span [{a}, {b}) · {b - a} token(s)<br>"
        + span_text(tokens, (a, b))
        + (f"<br>{extra_hover[i]}" if extra_hover and extra_hover[i] else "")
        for i, (a, b) in enumerate(layout.spans)
    ]
    leaves = [i for i in range(len(layout)) if layout.is_leaf[i]]
    inner = [i for i in range(len(layout)) if not layout.is_leaf[i]]
    colors = node_colors or [PRIMARY] * len(layout)
    fig = go.Figure()
    for faint, name in ((True, "bracket edges"), (False, "edges")):
        fig.add_trace(
            go.Scatter(
                x=edges[faint][0],
                y=edges[faint][1],
                mode="lines",
                name=name,
                hoverinfo="skip",
                showlegend=False,
                line={"color": FAINT_EDGE if faint else EDGE, "width": 1},
            )
        )
    if layout.collapsed:
        tx: list[float | None] = []
        ty: list[float | None] = []
        for i in sorted(layout.collapsed):
            a, b = layout.spans[i]
            tx += [a - 0.45, layout.x[i], b - 0.55, a - 0.45, None]
            ty += [0, layout.y[i], 0, 0, None]
        fig.add_trace(
            go.Scatter(
                x=tx,
                y=ty,
                mode="lines",
                name="collapsed subtrees",
                showlegend=False,
                fill="toself",
                fillcolor="rgba(47, 111, 159, 0.10)",
                hoverinfo="skip",
                line={"color": FAINT_EDGE, "width": 1},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[layout.x[i] for i in leaves],
            y=[0] * len(leaves),
            mode="markers",
            name="leaves",
            showlegend=False,
            marker={"size": 7 if n <= TOKEN_LABEL_LIMIT else 4, "color": NEUTRAL},
            hovertext=[hover[i] for i in leaves],
            hoverinfo="text",
            selected=NO_SELECTION_STYLE,  # a click opens a part: it must not dim the tree
            unselected=NO_SELECTION_STYLE,
        )
    )
    height = max(max(layout.y, default=0), y_max or 0)
    fits = _labels_that_fit(layout, inner, lo, hi, height, view)
    labelled = any(fit and layout.labels[i] for fit, i in zip(fits, inner, strict=True))
    fig.add_trace(
        go.Scatter(
            x=[layout.x[i] for i in inner],
            y=[layout.y[i] for i in inner],
            mode="markers+text" if labelled else "markers",
            name="internal nodes",
            showlegend=False,
            text=[layout.labels[i] if fit else "" for fit, i in zip(fits, inner, strict=True)]
            if labelled
            else None,
            textposition="top center",
            textfont={"family": FONT, "size": view.label_px},
            marker={
                "size": 9 if n <= TOKEN_LABEL_LIMIT else 6,
                "color": [colors[i] for i in inner],
                "symbol": (
                    ["triangle-up" if i in layout.collapsed else "circle" for i in inner]
                    if layout.collapsed
                    else "circle"
                ),
            },
            hovertext=[hover[i] for i in inner],
            hoverinfo="text",
            customdata=[list(layout.spans[i]) for i in inner],  # a click opens this span
            selected=NO_SELECTION_STYLE,
            unselected=NO_SELECTION_STYLE,
        )
    )
    top = height + 1.2  # room for the labels above the top nodes (the same for every tree)
    boundaries = [b for b in boundaries or [] if lo < b < hi]
    if boundaries:
        bx: list[float | None] = []
        by: list[float | None] = []
        for b in boundaries:
            bx += [b - 0.5, b - 0.5, None]
            by += [-0.5, top - 0.2, None]
        fig.add_trace(
            go.Scatter(
                x=bx,
                y=by,
                mode="lines",
                name="chunk boundaries",
                legendrank=2000,
                hoverinfo="skip",
                line={"color": BOUNDARY, "width": 1.5, "dash": "dot"},
            )
        )
    for name, color, symbol in legend or []:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                legendgroup="legend",  # marks the legend-only traces
                marker={"color": color, "symbol": symbol, "size": 9},
                hoverinfo="skip",
            )
        )
    _base_layout(fig, title, height=tree_figure_height(height))
    if legend or boundaries:
        # Inside the plot's top-left corner: a tree's root is at the middle, its left flank low.
        fig.layout.showlegend = True
        fig.layout.legend = {
            "x": 0.01,
            "y": 0.99,
            "xanchor": "left",
            "yanchor": "top",
            "bgcolor": "rgba(255, 255, 255, 0.85)",
            "font": {"size": 11},
        }
    _token_axis(fig, tokens, lo, hi)
    fig.update_yaxes(title_text="height", range=[-0.7, top], showgrid=False, zeroline=False)
    return fig


def window_height(layout: TreeLayout, window: tuple[int, int] | None) -> int:
    """Height of the tallest node of ``layout`` inside tokens ``window`` (None: all)."""
    lo, hi = window or (0, 10**12)
    return max((y for (a, b), y in zip(layout.spans, layout.y, strict=True) if lo <= a and b <= hi),
               default=0)  # fmt: skip


def tree_figure_height(height: int) -> int:
    """Pixel height of a tree figure whose tallest node is at ``height``."""
    return int(min(520, 180 + 14 * height))


# Marker kinds the tree legends explain: (legend text, colour, plotly marker symbol).
LEGEND_GOLD_OP = ("operator = its value", GOLD, "circle")
LEGEND_CROSSING = ("crosses a chunk boundary (no RIR tree can hold it)", BOUNDARY, "circle")
LEGEND_MATCH = ("merge = a gold operator", GOLD, "circle")
LEGEND_OTHER = ("other merge", PRIMARY, "circle")
LEGEND_COLLAPSED = ("collapsed subtree (hover: its tokens)", NEUTRAL, "triangle-up")


# Node labels: their font and the plot they are fitted to (the page's full width at 1280 px).
LABEL_PX = 10  # font size of the node labels (teacher mode draws them larger)
LABEL_PLOT_PX = 900  # plot width in pixels
LABEL_CHAR_EM = 0.7  # one monospace character's width, in font sizes, with a little air
LABEL_LINE_EM = 1.3  # one line's height, in font sizes, with a little air


@dataclass(frozen=True)
class TreeView:
    """How a tree figure is drawn on the page: the token window shown (None: all of them), the
    node labels' font size and the plot's width in pixels (what decides which labels fit)."""

    window: tuple[int, int] | None = None
    label_px: int = LABEL_PX
    plot_px: int = LABEL_PLOT_PX


def label_boxes(
    layout: TreeLayout, nodes: list[int], lo: int, hi: int, height: int, view: TreeView
) -> list[tuple[float, float, float, float]]:
    """The pixel box ``(x0, x1, y0, y1)`` each node's label takes on the plot (y upwards)."""
    px_per_token = view.plot_px / max(hi - lo, 1)
    px_per_level = (tree_figure_height(height) - 90) / (height + 1.9)
    char, line = LABEL_CHAR_EM * view.label_px, LABEL_LINE_EM * view.label_px
    boxes = []
    for i in nodes:
        half = len(layout.labels[i]) * char / 2 + 2
        cx, cy = (layout.x[i] - lo + 0.5) * px_per_token, layout.y[i] * px_per_level
        boxes.append((cx - half, cx + half, cy + 4, cy + 4 + line))
    return boxes


def _labels_that_fit(
    layout: TreeLayout, inner: list[int], lo: int, hi: int, height: int, view: TreeView
) -> list[bool]:
    """Which of the ``inner`` nodes get their label written: the widest first, each only where
    its text does not overlap one already placed (a deep chain of nested operators gets its
    outermost label, not a smear of all of them) and stays inside the plot."""
    boxes = label_boxes(layout, inner, lo, hi, height, view)
    placed: list[tuple[float, float, float, float]] = []
    fits = [False] * len(inner)
    order = sorted(
        range(len(inner)), key=lambda j: -(layout.spans[inner[j]][1] - layout.spans[inner[j]][0])
    )
    for j in order:
        if not layout.labels[inner[j]]:
            continue
        box = boxes[j]
        if box[0] < -view.label_px or box[1] > view.plot_px + view.label_px:
            continue  # would be cut at the plot's edge
        if all(box[1] < b[0] or b[1] < box[0] or box[3] < b[2] or b[3] < box[2] for b in placed):
            placed.append(box)
            fits[j] = True
    return fits


def _compact(
    layout: TreeLayout, min_span: int | None, window: tuple[int, int] | None = None
) -> tuple[TreeLayout, str]:
    """``layout`` cut to ``window`` (tokens ``[lo, hi)``, None: all) and collapsed at
    ``min_span`` tokens (None: :func:`auto_min_span`), and a title suffix saying so."""
    note = ""
    if window is not None:
        layout = window_layout(layout, *window)
        note = f" · tokens {window[0]}-{window[1] - 1}"
    w = auto_min_span(layout) if min_span is None else int(min_span)
    if w <= 2:
        return layout, note
    return compact_layout(layout, w), note + f" · subtrees under {w} tokens collapsed"


def gold_tree_figure(
    expr: Expr,
    tokens: list[str],
    min_span: int | None = 1,
    boundaries: list[int] | None = None,
    crossing: set[tuple[int, int]] | None = None,
    y_max: int | None = None,
    view: TreeView | None = None,
) -> go.Figure:
    """The parser's tree of the expression: operators (labelled ``OP=value``) over tokens.

    ``min_span``: collapse subtrees narrower than this many tokens (None: as needed to draw at
    most :data:`TREE_NODE_BUDGET` nodes; 1: draw every node). ``boundaries``: the chunk
    boundaries to draw (tokens that start a chunk); ``crossing``: the operator spans that cross
    one (no RIR tree can hold them), drawn red; ``y_max`` and ``view`` (a token window, the
    labels' size) as in :func:`tree_figure`.
    """
    view = view or TreeView()
    layout, note = _compact(gold_tree_layout(expr, tokens), min_span, view.window)
    crossing = crossing or set()
    colors = [BOUNDARY if s in crossing else GOLD for s in layout.spans]
    hover = [
        "crosses a chunk boundary: no tree RIR builds with these chunks has this node"
        if s in crossing
        else ""
        for s in layout.spans
    ]
    legend = [LEGEND_GOLD_OP]
    if any(s in crossing for s in layout.spans):
        legend.append(LEGEND_CROSSING)
    if layout.collapsed:
        legend.append(LEGEND_COLLAPSED)
    title = "Gold tree (from the parser)" + note
    return tree_figure(layout, tokens, title, colors, hover, boundaries, y_max, legend, view)


def beam_tree_figure(
    tree: Any,
    tokens: list[str],
    gold_spans: list[list[int]],
    score: float,
    title: str,
    min_span: int | None = 1,
    built: list[list[int]] | None = None,
    boundaries: list[int] | None = None,
    y_max: int | None = None,
    view: TreeView | None = None,
) -> go.Figure:
    """A model beam's binary tree; internal nodes whose span is a gold constituent are green.
    ``min_span``, ``boundaries``, ``y_max`` and ``view`` as in :func:`gold_tree_figure`.
    ``built`` (the trace's final beam ``built`` list, ``[first, last, level, chunk, step]`` per
    merged node) adds to each node's hover the outer level, chunk and merge step at which the
    search built it."""
    view = view or TreeView()
    layout, note = _compact(binary_tree_layout(tree, tokens), min_span, view.window)
    gold = {tuple(s) for s in gold_spans}
    where = {(b[0], b[1]): b[2:] for b in built or [] if b[2] >= 0}
    colors = [GOLD if tuple(s) in gold else PRIMARY for s in layout.spans]

    def hover_of(span: tuple[int, int]) -> str:
        text = f"this beam's score {score:.3f}"
        if span in where:
            level, chunk, step = where[span]
            text = f"built at level {level}, chunk {chunk}, merge step {step}<br>" + text
        return text + (" · gold constituent" if span in gold else "")

    hover = [hover_of(tuple(s)) for s in layout.spans]
    legend = [LEGEND_MATCH, LEGEND_OTHER] + ([LEGEND_COLLAPSED] if layout.collapsed else [])
    return tree_figure(layout, tokens, title + note, colors, hover, boundaries, y_max, legend, view)


def tree_height(tree: Any) -> int:
    """Height of a model tree (a token index or ``[left, right]``): 0 for one token."""
    heights: list[int] = []
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        t, expanded = stack.pop()
        if isinstance(t, int):
            heights.append(0)
        elif expanded:
            right, left = heights.pop(), heights.pop()
            heights.append(1 + max(left, right))
        else:
            stack.append((t, True))
            stack.extend((child, False) for child in reversed(t))
    return heights[0]


def gold_height(expr: Expr) -> int:
    """Height of the gold tree as :func:`gold_tree_layout` draws it (a digit or bracket: 0)."""
    heights: list[int] = []
    stack: list[tuple[Any, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if not isinstance(node, Op):
            heights.append(0)
        elif expanded:
            kids = [heights.pop() for _ in node.args]
            heights.append(1 + max([0, *kids]))
        else:
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args)
    return heights[0]


# --------------------------------------------------------------------------------------------
# The answer


def probability_figure(
    probabilities: list[float], prediction: int, ground_truth: int | None
) -> go.Figure:
    """Class probabilities 0-9; the predicted class dark, the ground truth outlined in green."""
    classes = list(range(len(probabilities)))
    colors = [PRIMARY if c == prediction else NEUTRAL for c in classes]
    outline = [GOLD if c == ground_truth else "rgba(0,0,0,0)" for c in classes]
    fig = go.Figure(
        go.Bar(
            x=classes,
            y=list(probabilities),
            name="probability",
            marker={"color": colors, "line": {"color": outline, "width": 3}},
            hovertemplate="value %{x}: p = %{y:.3f}<extra></extra>",
        )
    )
    _base_layout(fig, "Class probabilities (green outline: ground truth)", height=240)
    fig.update_xaxes(tickmode="array", tickvals=classes, title_text="value")
    fig.update_yaxes(range=[0, 1], title_text="p")
    return fig


# --------------------------------------------------------------------------------------------
# Outer recursion: levels and chunks


def chunk_of_nodes(level: dict[str, Any]) -> list[int]:
    """For every node of a level, the index of the chunk holding it."""
    starts = [c[0] for c in level["chunks"]]
    return [bisect_right(starts, a) - 1 for a, _ in level["nodes"]]


def outer_levels_figure(
    levels: list[dict[str, Any]],
    tokens: list[str],
    current_level: int,
    current_chunk: int | None = None,
) -> go.Figure:
    """Balanced k-ary picture of the outer recursion: one row per level (level 0, the tokens, at
    the bottom), each node a box over its span, chunks in alternating tones with red boundary
    lines; the current level is saturated and banded in yellow, its ``current_chunk`` amber.

    Traces: one bar trace ``level L`` per level (customdata ``[level, chunk]`` per node), then
    ``chunk boundaries`` (vertical segments at ``x = first - 0.5`` of every chunk but the first).
    A level with more than :data:`LEVEL_NODE_LIMIT` nodes is summarised: one box per chunk
    (hover: its node count) instead of one per node.
    """
    n = len(tokens)
    fig = go.Figure()
    bx: list[float | None] = []
    by: list[float | None] = []
    for lv in levels:
        ell = lv["level"]
        chunk = chunk_of_nodes(lv)
        tones = CHUNK_TONES if ell == current_level else CHUNK_TONES_DIM
        picked = current_chunk if ell == current_level else None
        nodes = lv["nodes"]
        if len(nodes) > LEVEL_NODE_LIMIT:  # a level summary: one box per chunk
            counts = [chunk.count(c) for c in range(len(lv["chunks"]))]
            nodes, chunk = lv["chunks"], list(range(len(lv["chunks"])))
            hover = [
                f"level {ell} · chunk {c}: {counts[c]} nodes over tokens [{a}, {b})<br>"
                f"{span_text(tokens, (a, b))}"
                for c, (a, b) in enumerate(nodes)
            ]
        else:
            hover = [
                f"level {ell} · chunk {c} · node [{a}, {b})<br>{span_text(tokens, (a, b))}"
                for c, (a, b) in zip(chunk, nodes, strict=True)
            ]
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=[ell] * len(nodes),
                base=[a - 0.5 for a, _ in nodes],
                x=[b - a for a, b in nodes],
                width=0.72,
                name=f"level {ell}",
                marker={
                    "color": [CURRENT_CHUNK if c == picked else tones[c % 2] for c in chunk],
                    "line": {"color": "white", "width": 1 if len(nodes) <= 120 else 0},
                },
                selected=NO_SELECTION_STYLE,
                unselected=NO_SELECTION_STYLE,
                customdata=[[ell, c] for c in chunk],
                hovertext=hover,
                hoverinfo="text",
            )
        )
        for first, _ in lv["chunks"][1:]:
            bx += [first - 0.5, first - 0.5, None]
            by += [ell - 0.45, ell + 0.45, None]
    fig.add_trace(
        go.Scatter(
            x=bx,
            y=by,
            mode="lines",
            name="chunk boundaries",
            hoverinfo="skip",
            line={"color": BOUNDARY, "width": 2},
        )
    )
    fig.add_shape(
        type="rect",
        x0=-0.5,
        x1=n - 0.5,
        y0=current_level - 0.5,
        y1=current_level + 0.5,
        fillcolor=CURRENT_BAND,
        line={"width": 0},
        layer="below",
    )
    title = "Outer recursion: levels (rows) and chunks (tones, red lines)"
    _base_layout(fig, title, height=int(120 + 60 * len(levels)))
    fig.update_layout(barmode="overlay", bargap=0)
    _token_axis(fig, tokens)
    fig.update_yaxes(
        tickmode="array",
        tickvals=[lv["level"] for lv in levels],
        ticktext=[f"level {lv['level']}" for lv in levels],
        range=[-0.6, len(levels) - 0.4],
        showgrid=False,
    )
    return fig


def levels_table(
    levels: list[dict[str, Any]], width: int | None, current: int | None = None
) -> pd.DataFrame:
    """One row per outer level: nodes, chunks, the widest chunk, merge steps (the widest chunk
    minus one: chunks of a level run in parallel) and, after chunked levels, whether the
    alignment kept the best combination. Column ``shown`` marks the ``current`` level."""
    rows = []
    for lv in levels:
        sizes = [d["nodes"] for d in lv["chunk_details"]] or [len(lv["nodes"])]
        al = lv.get("alignment")
        rows.append(
            {
                "shown": "▶" if lv["level"] == current else "",
                "level": lv["level"],
                "nodes": len(lv["nodes"]),
                "chunks": len(lv["chunks"]),
                "widest chunk": max(sizes),
                "merge steps": lv["inner_steps"],
                "chunked (n ≥ 1.5·W)": bool(width) and 2 * len(lv["nodes"]) >= 3 * width,
                "best combination kept": None if al is None else bool(al["best_kept"]),
            }
        )
    return pd.DataFrame(rows)


def chunk_label(level: dict[str, Any], c: int) -> str:
    """``chunk 2: tokens [60, 90), 30 nodes``."""
    first, last = level["chunks"][c]
    nodes = level["chunk_details"][c]["nodes"] if level["chunk_details"] else None
    return f"chunk {c}: tokens [{first}, {last})" + (f", {nodes} nodes" if nodes else "")


# --------------------------------------------------------------------------------------------
# Inner recursion: one merge step of one chunk


def _beam_rows(step: dict[str, Any], only_valid: bool) -> list[int]:
    rows = [k for k, b in enumerate(step["beams"]) if b["valid"] or not only_valid]
    return rows or [0]


def merges_from(step: dict[str, Any]) -> dict[int, list[tuple[int, int]]]:
    """Old beam -> [(pair position, new beam), ...] of the merges kept at this step."""
    out: dict[int, list[tuple[int, int]]] = {}
    for new, ch in enumerate(step["chosen"]):
        if ch["valid"]:
            out.setdefault(ch["parent"], []).append((ch["position"], new))
    return out


def beam_rows_figure(
    step: dict[str, Any], tokens: list[str], span: list[int], only_valid: bool = True
) -> go.Figure:
    """The current row of nodes of every beam before this merge (beam 0 on top): each node a
    box over its span; the nodes of a pair merged here in light orange (dark orange for the
    merge that makes the best new beam), with a diamond between them (trace ``merges``: hover
    names the new beam it makes)."""
    rows = _beam_rows(step, only_valid)
    merges = merges_from(step)
    fig = go.Figure()
    mx, my, mtext = [], [], []
    for k in rows:
        beam = step["beams"][k]
        nodes = beam["nodes"]
        color = [NEUTRAL] * len(nodes)
        for j, new in sorted(merges.get(k, []), key=lambda m: -m[1]):  # best new beam last
            color[j] = color[j + 1] = CHOSEN if new == 0 else KEPT
            mx.append(nodes[j][1] - 0.5)
            my.append(k)
            mtext.append(
                f"beam {k} merges pair {j}: [{nodes[j][0]}, {nodes[j + 1][1]}) → new beam {new}"
            )
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=[k] * len(nodes),
                base=[a - 0.5 for a, _ in nodes],
                x=[b - a for a, b in nodes],
                width=0.7,
                name=f"beam {k}",
                marker={
                    "color": color,
                    "line": {"color": "white", "width": 1},
                },
                hovertext=[
                    f"beam {k} · node {i} [{a}, {b})<br>{span_text(tokens, (a, b))}"
                    for i, (a, b) in enumerate(nodes)
                ],
                hoverinfo="text",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=mx,
            y=my,
            mode="markers",
            name="merges",
            hovertext=mtext,
            hoverinfo="text",
            marker={
                "symbol": "diamond",
                "size": 11,
                "color": BOUNDARY,
                "line": {"color": "white", "width": 1},
            },
        )
    )
    title = "Beams before this merge (orange: pairs merged; dark: into the best new beam)"
    _base_layout(fig, title, height=int(90 + 34 * len(rows)))
    fig.update_layout(barmode="overlay", bargap=0)
    _token_axis(fig, tokens, span[0], span[1])
    fig.update_yaxes(
        tickmode="array",
        tickvals=rows,
        ticktext=[_beam_label(step, k) for k in rows],
        autorange="reversed",
        showgrid=False,
    )
    return fig


def _beam_label(step: dict[str, Any], k: int) -> str:
    """A beam's row label, the same on both step figures (so their plot areas line up)."""
    return f"beam {k} ({step['beams'][k]['score']:.2f})"


def pair_heat_figure(
    step: dict[str, Any], tokens: list[str], span: list[int], only_valid: bool = True
) -> go.Figure:
    """The pair probabilities on the same token axis as :func:`beam_rows_figure`: one row per
    beam, one cell per adjacent pair of its nodes, from the middle of the left node to the
    middle of the right one, so the cell sits under the place where the two would join (the
    same column means the same tokens in every beam). Trace ``pair probabilities`` (horizontal
    bars coloured by p; ``customdata`` ``[beam, pair j, p]``) and ``merges`` (diamonds on the
    merged pairs' boundaries, as in the beam rows figure). The colour scale sits above the
    plot, so one row of beams leaves it readable."""
    rows = _beam_rows(step, only_valid)
    merges = merges_from(step)
    base, width, ys, probs, data, hover = [], [], [], [], [], []
    mx, my = [], []
    for k in rows:
        beam = step["beams"][k]
        nodes = beam["nodes"]
        mids = [(a + b - 1) / 2 for a, b in nodes]  # x of each node's middle
        for j, p in enumerate(beam["pair_probs"]):
            base.append(mids[j])
            width.append(mids[j + 1] - mids[j])
            ys.append(k)
            probs.append(p)
            data.append([k, j, p])
            hover.append(
                f"beam {k} · pair {j}: [{nodes[j][0]}, {nodes[j][1]}) + "
                f"[{nodes[j + 1][0]}, {nodes[j + 1][1]})<br>p = {p:.3f}"
            )
        for j, _ in merges.get(k, []):
            mx.append(nodes[j][1] - 0.5)
            my.append(k)
    cmax = max(probs, default=1.0) or 1.0
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=ys,
            base=base,
            x=width,
            width=0.7,
            name="pair probabilities",
            customdata=data,
            marker={
                "color": probs,
                "colorscale": "Blues",
                "cmin": 0,
                "cmax": cmax,
                "line": {"color": "white", "width": 1},
                "showscale": True,
                "colorbar": {
                    "title": {"text": "p", "side": "right"},
                    "orientation": "h",
                    "x": 1,
                    "xanchor": "right",
                    "y": 1,
                    "yanchor": "bottom",
                    "ypad": 6,
                    "len": 0.3,
                    "thickness": 10,
                    "tickvals": [0, cmax],
                    "ticktext": ["0", f"{cmax:.2f}"],
                },
            },
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=mx,
            y=my,
            mode="markers",
            name="merges",
            marker={"symbol": "diamond-open", "size": 12, "color": CHOSEN, "line": {"width": 2}},
            hoverinfo="skip",
        )
    )
    title = "Pair probabilities per beam, where each pair would join (diamonds: merged)"
    # The title on top, the colour scale under it on the right, then the rows.
    _base_layout(fig, title, int(140 + 34 * len(rows)))
    fig.update_layout(barmode="overlay", bargap=0, margin={"t": 90})
    fig.layout.title.update(y=1 - 30 / fig.layout.height)  # the baseline 30 px down
    _token_axis(fig, tokens, span[0], span[1])
    fig.update_yaxes(
        tickmode="array",
        tickvals=rows,
        ticktext=[_beam_label(step, k) for k in rows],
        autorange="reversed",
        showgrid=False,
    )
    return fig


def beams_table(step: dict[str, Any], only_valid: bool = True) -> pd.DataFrame:
    """One row per beam before the merge: validity, accumulated score, its likeliest pair."""
    rows = []
    for k in _beam_rows(step, only_valid):
        beam = step["beams"][k]
        probs = beam["pair_probs"]
        best = max(range(len(probs)), key=probs.__getitem__) if probs else None
        rows.append(
            {
                "beam": k,
                "valid": beam["valid"],
                "score (log p)": round(beam["score"], 3),
                "likeliest pair": best,
                "p": round(probs[best], 3) if best is not None else None,
            }
        )
    frame = pd.DataFrame(rows)
    return frame.drop(columns="valid") if only_valid else frame


def candidates_table(step: dict[str, Any], only_valid: bool = True) -> pd.DataFrame:
    """Every candidate (beam, pair) of this step with its score and whether it survived pruning
    to the K best; survivors name the new beam they became. Best scores first; ``only_valid``
    leaves out the candidates of inactive beams."""
    new_of = {(ch["parent"], ch["position"]): n for n, ch in enumerate(step["chosen"])}
    rows = []
    for cand in step["candidates"]:
        if only_valid and not cand["valid"]:
            continue
        k, j = cand["parent"], cand["position"]
        nodes = step["beams"][k]["nodes"]
        merged = f"[{nodes[j][0]}, {nodes[j + 1][1]})" if j + 1 < len(nodes) else "-"
        rows.append(
            {
                "from beam": k,
                "pair": j,
                "merged span": merged,
                "score": round(cand["score"], 3),
                "valid": cand["valid"],
                "survived": cand["survived"],
                "new beam": new_of.get((k, j)) if cand["survived"] else None,
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(["valid", "score"], ascending=[False, False], kind="stable")
        if only_valid:
            frame = frame.drop(columns="valid")
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Final beams, depth, alignment


def final_beams_table(final_beams: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per final beam: its weight in the root, score, validity, gold recall."""
    return pd.DataFrame(
        [
            {
                "beam": k,
                "weight": round(b["weight"], 4),
                "score": round(b["score"], 4),
                "valid": b["valid"],
                "gold recall": round(b.get("gold_recall", float("nan")), 3),
            }
            for k, b in enumerate(final_beams)
        ]
    )


DEPTH_BARS = (
    ("performed", "measured (this input)"),
    ("rir_bound", "RIR bound W·log_W n"),
    ("ebt", "EBT/BT-GRC n−1"),
    ("balanced", "balanced ⌈log₂ n⌉"),
)


def depth_figure(depth: dict[str, Any]) -> go.Figure:
    """Sequential merge steps performed for this input next to the three bounds."""
    names = [label for _, label in DEPTH_BARS]
    values = [float(depth[key]) for key, _ in DEPTH_BARS]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            name="depth",
            text=[f"{v:.1f}" if not float(v).is_integer() else f"{int(v)}" for v in values],
            textposition="outside",
            marker={"color": [CHOSEN, PRIMARY, NEUTRAL, NEUTRAL]},
            hovertemplate="%{x}: %{y:.1f} sequential steps<extra></extra>",
        )
    )
    _base_layout(fig, "Sequential depth: measured vs bounds", height=280)
    top = max(values, default=1.0)
    fig.update_yaxes(title_text="sequential merges", range=[0, max(1.0, top) * 1.2])
    return fig


def alignment_probs_figure(alignment: dict[str, Any]) -> go.Figure:
    """Each chunk's beam probabilities softmax(scores), the distribution ``sample`` draws from."""
    z = alignment["chunk_probs"]
    k = len(z[0]) if z else 0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(k)),
            y=[f"chunk {c}" for c in range(len(z))],
            texttemplate="%{z:.2f}" if len(z) * k <= 200 else None,
            colorscale="Blues",
            zmin=0,
            name="beam probabilities",
            hovertemplate="%{y}, beam %{x}: p = %{z:.3f}<extra></extra>",
        )
    )
    _base_layout(fig, "Beam probabilities per chunk", height=int(140 + 26 * len(z)))
    fig.update_layout(margin={"b": 50})
    fig.update_xaxes(title_text="beam of the chunk", dtick=1)
    fig.update_yaxes(autorange="reversed")
    return fig


def alignment_picks_figure(alignment: dict[str, Any]) -> go.Figure:
    """Which beam of every chunk each slot of the next level took (rows = slots)."""
    slots = alignment["slots"]
    z = [s["picks"] for s in slots]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"chunk {c}" for c in range(len(z[0]) if z else 0)],
            y=[f"slot {s} ({sl['score']:.2f})" for s, sl in enumerate(slots)],
            text=[[str(p) for p in row] for row in z],
            texttemplate="%{text}" if z and len(z[0]) <= 40 else None,
            colorscale="Viridis",
            zmin=0,
            zmax=max(1, len(alignment["chunk_probs"][0]) - 1) if alignment["chunk_probs"] else 1,
            name="picks",
            hovertemplate="%{y}, %{x}: beam %{z}<extra></extra>",
        )
    )
    _base_layout(fig, "Picks per slot: the beam taken from each chunk", int(140 + 26 * len(z)))
    fig.update_yaxes(autorange="reversed")
    return fig


def model_summary(config: dict[str, Any]) -> str:
    """``D=64 · S4D on · defaults K=7, W=30, sample alignment`` (the sidebar overrides the
    defaults: they are inference settings, not weights)."""
    parts = [f"D={config.get('hidden_size')}", "S4D on" if config.get("use_s4d") else "S4D off"]
    defaults = [f"K={config.get('beam_size')}"]
    if config.get("model_type") == "rir_ebt_grc":
        defaults.append(f"W={config.get('chunk_width')}")
    defaults.append(f"{config.get('alignment')} alignment")
    return " · ".join(parts) + " · defaults " + ", ".join(defaults)


def split_label(name: str) -> str:
    """What a standard split holds, from its recipe: ``len_500_600`` -> ``500-600 tokens``."""
    from rir_core.generate import SPLITS

    spec = SPLITS.get(name)
    if spec is None:
        return name
    r = spec.recipe
    label = f"{r.min_tokens:,}-{r.max_tokens:,} tokens"
    return label if r.max_args == 5 else f"{label}, up to {r.max_args} arguments"


def _recorded(metrics: dict[str, Any]) -> dict[str, tuple[float, int | None]]:
    """``{split: (accuracy, n)}`` for the well-formed entries of a sidecar's ``metrics``."""
    out = {}
    for name, entry in metrics.items():
        if not isinstance(entry, dict) or entry.get("settings"):
            continue  # malformed, or recorded with other inference settings than its own
        acc = entry.get("accuracy")
        if isinstance(acc, (int, float)) and not isinstance(acc, bool) and 0 <= acc <= 1:
            n = entry.get("n")
            out[name] = (float(acc), n if isinstance(n, int) and n > 0 else None)
    return out


def accuracy_line(metrics: dict[str, Any]) -> str | None:
    """The accuracies a checkpoint's sidecar records, one clause per split, or None.

    ``dev (2-100 tokens) 94.3% of 1,000 · len_200_300 (200-300 tokens) 45.0% of 200 · ...``
    """
    parts = [
        f"{name} ({split_label(name)}) {acc:.1%}" + (f" of {n:,}" if n else "")
        for name, (acc, n) in _recorded(metrics).items()
    ]
    return " · ".join(parts) or None


def accuracy_at_length(
    metrics: dict[str, Any], n_tokens: int, default_settings: bool = True
) -> str | None:
    """A sentence on how often the model was right on inputs of this length, or None.

    Uses the narrowest recorded standard split of 5-argument expressions (the training recipe's
    operators) whose length window holds ``n_tokens``: dev, len_200_300, len_500_600 or
    len_900_1000. The wide splits (test_iid, args_*, lra) mix lengths and are left out. The
    figures were recorded with the checkpoint's own K, W and alignment; ``default_settings``
    False (the user changed them) says so instead of drawing a conclusion.
    """
    from rir_core.generate import SPLITS

    best = None
    for name, (acc, n) in _recorded(metrics).items():
        spec = SPLITS.get(name)
        if spec is None or name == "test_iid" or spec.recipe.max_args != 5:
            continue
        r = spec.recipe
        if r.min_tokens <= n_tokens <= r.max_tokens:
            width = r.max_tokens - r.min_tokens
            if best is None or width < best[0]:
                best = (width, name, acc, n)
    if best is None:
        return None
    _, name, acc, n = best
    examples = f", {n:,} examples" if n else ""
    sentence = (
        f"On inputs of {split_label(name)} this model was right {acc:.1%} of the time "
        f"(the {name} split{examples}, as recorded in its checkpoint)"
    )
    if not default_settings:
        return (
            f"{sentence}, with its default K, W and alignment. The search settings now differ, "
            "so this answer's odds may too."
        )
    if acc < 0.6:
        sentence += ": at this length its answer is often wrong, whatever the trees look like"
    return sentence + "."


def depth_curves_figure(width: int, n_max: int = 2000, mark_n: int | None = None) -> go.Figure:
    """Sequential depth against input length n for RIR (measured schedule and the paper's bound
    W·log_W n), EBT/BT-GRC (n - 1) and a balanced tree (⌈log₂ n⌉); log-scale y."""
    from rir_core.balanced import balanced_depth
    from rir_core.outer import depth_performed, rir_bound

    ns = list(range(2, n_max + 1))
    curves = {
        "RIR schedule (1.5·W rule)": [depth_performed(n, width) for n in ns],
        "RIR bound W·log_W n": [rir_bound(n, width) for n in ns],
        "EBT/BT-GRC n−1": [n - 1 for n in ns],
        "balanced ⌈log₂ n⌉": [balanced_depth(n) for n in ns],
    }
    colors = [CHOSEN, PRIMARY, NEUTRAL, GOLD]
    fig = go.Figure()
    for (name, ys), color in zip(curves.items(), colors, strict=True):
        fig.add_trace(go.Scatter(x=ns, y=ys, mode="lines", name=name, line={"color": color}))
    if mark_n is not None and 2 <= mark_n <= n_max:
        fig.add_vline(x=mark_n, line={"color": BOUNDARY, "dash": "dot"})
    _base_layout(fig, f"Sequential depth vs length (W = {width})", height=380)
    # The legend inside the plot's empty top-left corner (the curves rise to the right): below
    # the plot it ran into the x-axis title at a projector's text sizes.
    fig.update_layout(
        showlegend=True,
        legend={"x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top",
                "bgcolor": "rgba(255, 255, 255, 0.85)"},
    )  # fmt: skip
    fig.update_xaxes(title_text="tokens n", showgrid=True, gridcolor="#eee")
    # Labels at the powers of ten only (plotly's smaller in-between "2" and "5" are unreadable
    # on a projector).
    fig.update_yaxes(
        title_text="sequential merges (log scale)", type="log", dtick=1, gridcolor="#eee"
    )
    return fig
