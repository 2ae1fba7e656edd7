"""Explorer: type an expression, step through the outer chunk levels and the inner beam merges.

Thin by design: the model runs once per (expression, settings) inside ``state.get_trace``
(cached); every button and slider here only reads that cached trace and redraws a figure from
``app.figures``. The stepping controls live in fragments, so a step redraws only its section.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import logging
import secrets
import time

import streamlit as st

from app import exports, state, teacher
from app import figures as F
from app import lessons as L
from app import trees as T

log = logging.getLogger(__name__)
state.ensure_router()
ss = st.session_state

# Widget keys of this page's view (the settings.* ones are shared with other pages: app.state).
LEVEL, CHUNK, STEP = "explorer.level", "explorer.chunk", "explorer.step"
RANDOM_LENGTH = (5, 1000)  # the random expression's token count slider
# Log-scores grow to -2,000 on long inputs: a fixed format keeps the sign visible.
SCORE_COLUMN = st.column_config.NumberColumn(format="%.3f", width="medium")
# Tree drawings: collapse subtrees under this many tokens ("auto": as needed, 1: never).
COLLAPSE = "explorer.collapse"
COLLAPSE_OPTIONS = ["auto", 1, 2, 4, 8, 16, 32, 64, 128]
# The part of a long input both trees show: None (all of it) or a token window (lo, hi), kept
# with the expression it belongs to; a click on a tree node opens that node's span.
TREE_PART = "explorer.tree_part"
# Autoplay: the merge steps advance on their own (through every chunk and level, then stop).
AUTOPLAY = "explorer.autoplay"
AUTOPLAY_LAST = "explorer.autoplay.last"  # when the last automatic step was taken
AUTOPLAY_SECONDS = 1.5
FINAL_BEAM = "explorer.final_beam"


# --------------------------------------------------------------------------------------------
# Callbacks: they run before the script, so they may set other widgets' values.


def _apply_preset() -> None:
    name = ss.get("explorer.preset")
    if name:
        state.set_setting("settings.expression", state.presets()[name])
        state.reset_view()
        ss["explorer.preset"] = name


def _random_expression() -> None:
    from rir_core.generate import Recipe, generate

    n = int(ss.get("explorer.random_length", 40))
    example = generate(Recipe(max(2, n - n // 10), n), 1, seed=secrets.randbelow(2**31))[0]
    state.set_setting("settings.expression", example.text)
    state.reset_view()


def _reset_inner() -> None:
    ss[CHUNK], ss[STEP] = 0, 1


def _move(key: str, delta: int, lo: int, hi: int, reset: tuple[str, ...] = ()) -> None:
    ss[key] = min(max(int(ss.get(key, lo)) + delta, lo), hi)
    for other in reset:
        ss[other] = 0 if other == CHUNK else 1


def _on_outer_select() -> None:
    """A click on a node of the outer figure selects its level and chunk."""
    event = ss.get("explorer.outer_chart")
    points = event.selection.points if event is not None else []
    data = points[0].get("customdata") if points else None
    if data:
        ss[LEVEL], ss[CHUNK], ss[STEP] = int(data[0]), int(data[1]), 1
        teacher.request_scroll(L.INNER)  # its beam search is what the click asked for


def next_position(trace: dict, level: int, chunk: int, step: int) -> tuple[int, int, int] | None:
    """The merge step after ``(level, chunk, step)``: the next step of the chunk, else the first
    step of the next chunk that has merges (of this level, then of the next ones); None at the
    end of the recursion."""
    levels = trace["levels"]
    details = levels[level]["chunk_details"]
    if details and step < len(details[chunk]["steps"]):
        return level, chunk, step + 1
    for lv in range(level, len(levels)):
        chunks = levels[lv]["chunk_details"]
        for c in range(chunk + 1 if lv == level else 0, len(chunks)):
            if chunks[c]["steps"]:
                return lv, c, 1
    return None


def _autoplay_tick(trace: dict) -> None:
    """On an autoplay run: one merge step forward when the last one is due (the first run after
    switching it on only starts the clock); at the end of the recursion autoplay stops."""
    now = time.monotonic()
    last = ss.get(AUTOPLAY_LAST)
    if last is not None and now - last < 0.8 * AUTOPLAY_SECONDS:
        return  # a rerun for another reason (a click) in between: no extra step
    ss[AUTOPLAY_LAST] = now
    if last is None:
        return
    levels = trace["levels"]
    level = _clamp(LEVEL, 0, len(levels) - 1)
    chunk = _clamp(CHUNK, 0, max(len(levels[level]["chunks"]) - 1, 0))
    nxt = next_position(trace, level, chunk, int(ss.get(STEP, 1)))
    if nxt is None:
        ss[AUTOPLAY] = False
    else:
        ss[LEVEL], ss[CHUNK], ss[STEP] = nxt


def _clamp(key: str, lo: int, hi: int) -> int:
    ss[key] = min(max(int(ss.get(key, lo)), lo), hi)
    return ss[key]


def _stepper(label: str, key: str, lo: int, hi: int, unit: str, reset=(), on_change=None) -> int:
    """Previous / slider / Next for one index; a single value gets no slider (it needs a range)."""
    value = _clamp(key, lo, hi)
    left, mid, right = st.columns([2, 5, 2], vertical_alignment="bottom")
    left.button(
        f"Previous {unit}",
        key=f"{key}.prev",
        disabled=value <= lo,
        width="stretch",
        icon=":material/chevron_left:",
        on_click=_move,
        args=(key, -1, lo, hi, reset),
    )
    right.button(
        f"Next {unit}",
        key=f"{key}.next",
        disabled=value >= hi,
        width="stretch",
        icon=":material/chevron_right:",
        icon_position="right",
        on_click=_move,
        args=(key, +1, lo, hi, reset),
    )
    if hi > lo:
        mid.slider(label, lo, hi, key=key, on_change=on_change)
    else:
        mid.caption(f"{label}: {value} (the only one)")
    return int(ss[key])


# --------------------------------------------------------------------------------------------
# Sections


def expression_input() -> None:
    top, pick = st.columns([3, 1], vertical_alignment="bottom")
    state.expression_box(top)
    pick.selectbox(
        "Presets",
        list(state.presets()),
        index=None,
        key="explorer.preset",
        placeholder="Pick an example…",
        on_change=_apply_preset,
    )
    length, button = st.columns([3, 1], vertical_alignment="bottom")
    length.slider(
        "Random expression length (tokens)", *RANDOM_LENGTH, value=40, key="explorer.random_length"
    )
    button.button(
        "Random expression", key="explorer.random", on_click=_random_expression, width="stretch"
    )


def show_error(parsed: state.Parsed) -> None:
    st.error(F.md_escape(parsed.error))  # it quotes what was typed: shown as typed
    if parsed.position is not None:
        line, caret = F.caret_lines(parsed.text, parsed.position)
        st.code(f"{line}\n{caret}", language=None)


def answer(trace: dict, loaded: state.LoadedModel) -> None:
    st.subheader("The answer")
    probs = trace["probabilities"]
    pred, truth = trace["prediction"], trace["ground_truth"]
    left, right = st.columns([2, 3])  # room for the metrics' labels at teacher-mode sizes
    with left:
        a, b = st.columns(2)
        a.metric("Prediction", pred, help="The class with the highest probability.")
        b.metric("Ground truth", truth, help="The exact value, from the parser.")
        verdict = "correct" if pred == truth else "wrong"
        st.caption(f"The model is **{verdict}**: p(prediction) = {probs[pred]:.3f}.")
        config, used = loaded.config.to_dict(), trace["settings"]
        default = all(used[k] == config[k] for k in ("beam_size", "chunk_width", "alignment"))
        at_length = F.accuracy_at_length(loaded.metrics, len(trace["tokens"]), default)
        if at_length:
            st.caption(at_length)
        n, levels = len(trace["tokens"]), len(trace["levels"])
        st.caption(
            f"{n} tokens · {levels} outer level(s) · {trace['depth']['performed']} sequential "
            f"merge steps · K = {trace['settings']['beam_size']}, "
            f"W = {trace['settings']['chunk_width']}, {trace['settings']['alignment']} alignment, "
            f"seed {trace['settings']['seed']}"
        )
    with right:
        teacher.plotly_chart(F.probability_figure(probs, pred, truth), key="explorer.probs")
        st.caption("How sure the model is of each value 0-9: the dark bar is its answer.")
    state.model_panel(loaded)


def collapse_width() -> int | None:
    """The tree drawings' collapse width: None for "auto" (see ``figures.auto_min_span``)."""
    value = ss.get(COLLAPSE, "auto")
    return None if value == "auto" else int(value)


def tree_downloads(make_graph, key: str, trace: dict, what: str) -> None:
    """Download buttons for one tree as Graphviz DOT and as GraphML (built on click)."""
    stem = f"{exports.file_stem(trace)}-{key}"
    a, b = st.columns(2)
    a.download_button(
        "DOT (Graphviz)",
        data=lambda: T.to_dot(make_graph(), f"{what}: {trace['expression'][:80]}"),
        file_name=f"{stem}.dot",
        mime="text/vnd.graphviz",
        key=f"explorer.dot.{key}",
        on_click="ignore",
        icon=":material/download:",
        help=f"The {what} for Graphviz: dot -Tsvg {stem}.dot > tree.svg",
    )
    b.download_button(
        "GraphML",
        data=lambda: T.to_graphml(make_graph()),
        file_name=f"{stem}.graphml",
        mime="application/xml",
        key=f"explorer.graphml.{key}",
        on_click="ignore",
        icon=":material/download:",
        help=f"The {what} for networkx, Gephi or yEd (node attributes: label, first, last, "
        "height, leaf, text).",
    )


def _memo(name: str, trace: dict, args: tuple, build):
    """What ``build(*args)`` gave the last time this session drew ``name`` for this trace.

    Stepping through the merges of one chunk redraws the outer picture and the level summary
    unchanged: they are built once per (trace, level, chunk), not at every step (the outer figure
    was a fifth of a step's server time under the classroom load, docs/reliability.md). The memo
    holds the trace itself, so ``is`` can never match a newer trace at a recycled address.
    """
    slot = f"explorer.memo.{name}"
    memo = ss.get(slot)
    if memo is not None and memo[0] is trace and memo[1] == args:
        return memo[2]
    value = build(*args)
    ss[slot] = (trace, args, value)
    return value


def outer_recursion(trace: dict) -> int:
    levels, tokens = trace["levels"], trace["tokens"]
    st.subheader("Outer recursion: chunk levels", anchor=L.OUTER)
    st.caption(
        "Each row is one level of the outer recursion, bottom (the tokens) to top. Every box is "
        "a node over the tokens it covers; tones and red lines mark the chunks that are reduced "
        "independently (in parallel) by the inner beam search, each into one node of the level "
        "above. The amber chunk is the one shown below: click a box to pick another."
    )
    level = _clamp(LEVEL, 0, len(levels) - 1)
    chunk = _clamp(CHUNK, 0, len(levels[level]["chunks"]) - 1)
    teacher.plotly_chart(
        _memo("outer", trace, (levels, tokens, level, chunk), F.outer_levels_figure),
        key="explorer.outer_chart",
        on_select=_on_outer_select,
        selection_mode="points",
    )
    if len(levels) > 1:
        st.page_link(
            "pages/alignment.py",
            label="How the chunks' beams were combined between levels: the beam alignment page",
            icon=":material/call_split:",
        )
    level = _stepper(
        "Outer level",
        LEVEL,
        0,
        len(levels) - 1,
        "level",
        reset=(CHUNK, STEP),
        on_change=_reset_inner,
    )
    with st.expander("Level summary (every level in numbers)"):
        table = _memo(
            "levels", trace, (levels, trace["settings"]["chunk_width"], level), F.levels_table
        )
        st.dataframe(table, hide_index=True)
    lv = levels[level]
    width = trace["settings"]["chunk_width"]
    why = (
        f"{len(lv['nodes'])} nodes ≥ 1.5·W = {1.5 * width:g}, so they are cut into chunks of W"
        if len(lv["chunks"]) > 1
        else f"{len(lv['nodes'])} nodes < 1.5·W = {1.5 * width:g}, so they form one chunk"
    )
    st.markdown(
        f"**Level {level}** of {len(levels)} (levels 0-{len(levels) - 1}): "
        f"{len(lv['chunks'])} chunk(s), {lv['inner_steps']} merge steps ({why})."
    )
    return level


def inner_recursion(trace: dict, level: int) -> None:
    lv, tokens = trace["levels"][level], trace["tokens"]
    st.subheader("Inner recursion: beam search inside one chunk", anchor=L.INNER)
    if not lv["chunk_details"]:
        st.info("This model builds a fixed balanced tree: there is no beam search to show.")
        return
    n_chunks = len(lv["chunks"])
    chunk = _clamp(CHUNK, 0, n_chunks - 1)
    st.selectbox(
        "Chunk",
        list(range(n_chunks)),
        key=CHUNK,
        format_func=lambda c: F.chunk_label(lv, c),
        on_change=lambda: ss.__setitem__(STEP, 1),
    )
    detail = lv["chunk_details"][chunk]
    steps = detail["steps"]
    if not steps:
        st.info("This chunk holds a single node: there is nothing to merge.")
        return
    s = _stepper("Merge step", STEP, 1, len(steps), "step")
    step = steps[s - 1]
    st.markdown(
        f"**Merge step {s} of {len(steps)}** in chunk {chunk} of level {level} "
        f"(tokens [{detail['span'][0]}, {detail['span'][1]}))."
    )
    play, inactive = st.columns(2)
    if not ss.get(AUTOPLAY):
        ss.pop(AUTOPLAY_LAST, None)
    play.toggle(
        f"Autoplay (a merge step every {AUTOPLAY_SECONDS:g} s)",
        key=AUTOPLAY,
        help="Steps through every merge of every chunk and level on its own, then stops.",
    )
    show_all = inactive.toggle(
        "Show inactive beams",
        key="explorer.show_invalid",
        help="At the start only beam 0 is alive; the others are placeholders "
        "that the search has not filled yet.",
    )
    teacher.plotly_chart(
        F.beam_rows_figure(step, tokens, detail["span"], not show_all), key="explorer.beams"
    )
    st.caption(
        "One row per beam (a partial tree): its current nodes over the tokens, with the "
        "beam's accumulated log-probability. Orange pairs are the merges kept at this step; "
        "the diamond sits where two neighbours become one parent node."
    )
    teacher.plotly_chart(
        F.pair_heat_figure(step, tokens, detail["span"], not show_all), key="explorer.heat"
    )
    st.caption(
        "How likely the scorer finds each adjacent pair to be merged next, per beam (each row "
        "sums to 1), drawn where the two nodes would join: the same column is the same tokens "
        "in both pictures. Every beam proposes its best pairs; only the K best candidates "
        "overall survive."
    )
    # Side by side their last columns were cut at teacher mode's text size: one above the other.
    left, right = (st.container(), st.container()) if teacher.enabled() else st.columns([2, 3])
    with left:
        st.markdown("**Beams at this step**")
        st.dataframe(
            F.beams_table(step, not show_all),
            hide_index=True,
            column_config={"score (log p)": SCORE_COLUMN},
        )
    with right:
        st.markdown("**Candidates and pruning**")
        st.dataframe(
            F.candidates_table(step, not show_all),
            hide_index=True,
            height=280,
            column_config={"score": SCORE_COLUMN},
        )
    st.caption("Candidate score = beam score + log p(pair). 'survived' = among the K best.")


def view_params() -> dict[str, int]:
    """The Explorer's view as query parameters (a shared link reopens exactly this)."""
    params = {"level": ss.get(LEVEL, 0), "chunk": ss.get(CHUNK, 0), "step": ss.get(STEP, 1)}
    if ss.get(FINAL_BEAM) is not None:
        params["beam"] = ss[FINAL_BEAM]
    return params


def _recursion_views(trace: dict, self_refreshing: bool) -> None:
    """The outer and inner recursion sections; ``self_refreshing``: drawn by the fragment that
    reruns itself every AUTOPLAY_SECONDS (autoplay on), else by the still one."""
    if ss.get(AUTOPLAY):
        _autoplay_tick(trace)
    level = outer_recursion(trace)
    inner_recursion(trace, level)
    state.sync_query_params(view_params())
    teacher.scroll_if_asked()  # a click on a chunk brings its beam search into view
    # Switching the toggle reruns only this fragment, which stays the kind it was: a still
    # fragment would never tick. A whole-app rerun swaps in the other kind.
    if bool(ss.get(AUTOPLAY)) != self_refreshing:
        st.rerun(scope="app")


# Outer levels and inner steps: a fragment, so stepping reruns only this part; while autoplay
# is on, the same sections are drawn by a fragment that reruns itself every AUTOPLAY_SECONDS.
@st.fragment
def _still_views(trace: dict) -> None:
    _recursion_views(trace, self_refreshing=False)


@st.fragment(run_every=AUTOPLAY_SECONDS)
def _playing_views(trace: dict) -> None:
    _recursion_views(trace, self_refreshing=True)


def recursion_views(trace: dict) -> None:
    (_playing_views if ss.get(AUTOPLAY) else _still_views)(trace)


# Trees up to this many tokens are drawn side by side (gold left, model right); longer ones
# one above the other, each the page's full width.
SIDE_BY_SIDE_TOKENS = 60
WHY_MISSED = {
    True: "crosses a chunk boundary: no RIR tree can hold it",
    False: "inside a chunk: the search merged otherwise",
}


def _part_options(trace: dict, boundaries: list[int]) -> list[tuple[int, int]]:
    """What the trees can show: the whole input, each level-0 chunk, and the part a click
    opened (when it is not one of those)."""
    n = len(trace["tokens"])
    starts = [0, *boundaries, n]
    options = [(0, n)] + [(a, b) for a, b in zip(starts, starts[1:], strict=False)]
    opened = ss.get(TREE_PART)
    if opened not in options:
        options.append(opened)
    return options


def _part_label(part: tuple[int, int], trace: dict, boundaries: list[int]) -> str:
    if part == (0, len(trace["tokens"])):
        return f"the whole input ({len(trace['tokens']):,} tokens)"
    starts = [0, *boundaries]
    label = f"tokens {part[0]}-{part[1] - 1}"
    if part[0] in starts and part[1] in [*boundaries, len(trace["tokens"])]:
        chunk = starts.index(part[0])
        if (starts + [len(trace["tokens"])])[chunk + 1] == part[1]:
            return f"chunk {chunk}: {label}"
    return label


def _open_clicked_part(chart_key: str, n_tokens: int) -> None:
    """A click on a tree node (a collapsed triangle, an operator, a merge) shows its span."""
    event = ss.get(chart_key)
    points = event.selection.points if event is not None else []
    data = points[0].get("customdata") if points else None
    if data and len(data) == 2 and int(data[1]) - int(data[0]) >= 2:
        ss[TREE_PART] = (int(data[0]), int(data[1]))


def _chunk_facts(trace: dict) -> tuple[list[int], set[tuple[int, int]]]:
    """The level-0 chunk boundaries and the gold spans that cross one (per trace, memoised)."""
    levels = trace["levels"]

    def build(levels, gold):
        return T.chunk_boundaries(levels), set(T.chunk_recall(set(), gold, levels).crossing)

    return _memo("chunks", trace, (levels, trace["gold_spans"]), build)


@st.fragment
def trees(trace: dict, parsed: state.Parsed) -> None:
    """The gold tree and a final beam's tree on one screen, same token axis and scale, chunk
    boundaries on both; the beam's gold recall split into inside a chunk and across one."""
    tokens, beams = trace["tokens"], trace["final_beams"]
    st.subheader("Trees: the expression's and the model's", anchor=L.TREES)
    boundaries, crossing = _chunk_facts(trace)
    st.caption(
        "**Gold tree**: the expression's own structure from the parser, every operator a node "
        "above its tokens labelled with its value; the model never sees it. **Model tree**: "
        "one of the K complete binary trees the search ends with (the root the classifier "
        "reads is their weighted mix); green nodes match a gold operator."
        + (
            " Dotted red lines are chunk boundaries: every chunk is reduced to one node before "
            "the next level sees it, so an operator that crosses a boundary (red in the gold "
            "tree) is in no tree RIR can build, whatever the model learned."
            if boundaries
            else ""
        )
    )
    valid = [k for k, b in enumerate(beams) if b["valid"]] or [0]
    best = max(valid, key=lambda k: beams[k]["weight"])
    if ss.get(FINAL_BEAM) not in valid:  # none yet, or from a link, or K got smaller
        ss[FINAL_BEAM] = best
    long_input = len(tokens) > F.TOKEN_LABEL_LIMIT
    whole = (0, len(tokens))
    if ss.get(TREE_PART + ".of") != trace["expression"] or ss.get(TREE_PART) is None:
        ss[TREE_PART] = whole  # none yet, or a part of an earlier expression
        ss[TREE_PART + ".of"] = trace["expression"]
    pick, part_box, collapse = st.columns(3, vertical_alignment="bottom")
    k = pick.selectbox(
        "Model tree: final beam",
        valid,
        key=FINAL_BEAM,
        format_func=lambda k: f"beam {k}" + (" (the heaviest)" if k == best else ""),
        help="The beams' weights and recall are in the table 'All final beams' below.",
    )
    part = None
    if long_input:
        part = part_box.selectbox(
            "Show",
            _part_options(trace, boundaries),
            key=TREE_PART,
            format_func=lambda p: _part_label(p, trace, boundaries),
            help="Both trees over one part of the input: a chunk, or the span of a node you "
            "click on either tree (a collapsed triangle opens its subtree). Every node inside "
            "the part is drawn, with its label where it fits.",
        )
        collapse.select_slider(
            "Collapse subtrees under (tokens)",
            COLLAPSE_OPTIONS,
            value="auto",
            key=COLLAPSE,
            help="Long inputs: a subtree narrower than this is drawn as one triangle over its "
            "tokens (hover it for its span). 'auto' collapses just enough to draw at most "
            f"{F.TREE_NODE_BUDGET} nodes; 1 draws every node. Click a triangle to open it.",
        )
        part = None if part == whole else part
        st.caption(
            "Click a triangle (a collapsed subtree) or any node on either tree to show only "
            "its part; 'Show' goes back to the whole input."
            if part is None
            else f"Showing {_part_label(part, trace, boundaries)} of {len(tokens):,}: the "
            "nodes whose whole span lies inside it. 'Show' goes back to the whole input."
        )
    b = beams[k]
    graph = T.binary_tree_graph(b["tree"], tokens, trace["gold_spans"], name=f"beam{k}")
    recall = T.chunk_recall(T.constituents(graph), trace["gold_spans"], trace["levels"])
    if part is None:
        y_max = max(F.gold_height(parsed.expr), F.tree_height(b["tree"]))
    else:
        y_max = max(
            F.window_height(F.gold_tree_layout(parsed.expr, tokens), part),
            F.window_height(F.binary_tree_layout(b["tree"], tokens), part),
        )
    half = len(tokens) <= SIDE_BY_SIDE_TOKENS
    view = teacher.tree_view(part, half)
    # The gold side does not change with the beam picked: built once per trace and view.
    gold_fig = _memo(
        "gold_tree",
        trace,
        (collapse_width(), y_max, view),
        lambda width, top, view: F.gold_tree_figure(
            parsed.expr, tokens, width, boundaries, crossing, top, view
        ),
    )
    title = f"Model tree (beam {k})"
    beam_fig = F.beam_tree_figure(
        b["tree"],
        tokens,
        trace["gold_spans"],
        b["score"],
        title,
        collapse_width(),
        b.get("built"),
        boundaries,
        y_max,
        view,
    )
    if len(tokens) <= SIDE_BY_SIDE_TOKENS:
        left, right = st.columns(2)
    else:
        left = right = st.container()
    for fig, key, box in (
        (gold_fig, "explorer.gold", left),
        (beam_fig, "explorer.final_tree", right),
    ):
        opener = functools.partial(_open_clicked_part, key, len(tokens))
        teacher.plotly_chart(fig, key=key, container=box, on_select=opener, selection_mode="points")
    gold_graph = _memo("gold_graph", trace, (), lambda: T.gold_tree_graph(parsed.expr, tokens))
    cmp = T.compare_with_gold(graph, gold_graph)
    st.markdown(
        f"Beam {k} recovers **{recall.found} of the {recall.inside}** gold operators that lie "
        "inside a chunk"
        + (
            f"; the other **{len(recall.crossing)}** cross a chunk boundary and are "
            "unreachable by construction."
            if recall.crossing
            else " (no operator crosses a chunk boundary here)."
        )
    )
    a, c, d, e = st.columns(4)
    a.metric(
        "Found in chunks",
        f"{recall.found} / {recall.inside}",
        help="Gold operators inside one chunk whose whole span [OP ... ] is a node of this tree.",
    )
    c.metric(
        "Across a boundary",
        len(recall.crossing),
        help="Gold operators that cross a chunk boundary: no tree RIR builds with these chunks "
        "can have them (each chunk becomes one node first).",
    )
    d.metric(
        "Merges in brackets",
        f"{cmp.respects:.0%}",
        help="A merge that joins tokens inside an operator with tokens outside it crosses a "
        "gold bracket; the others respect the expression's structure.",
    )
    e.metric("Tree height", max(graph.nodes[0]["height"], 0), help="Longest root-to-token path.")
    if cmp.missing:
        cut = set(recall.crossing)
        with st.expander(f"Gold operators this beam misses ({len(cmp.missing)})"):
            st.dataframe(
                [
                    {
                        "span": f"[{a}, {z})",
                        "why": WHY_MISSED[(a, z) in cut],
                        "tokens": F.span_text(tokens, (a, z)),
                    }
                    for a, z in cmp.missing[:200]
                ],
                hide_index=True,
            )
    with st.expander(f"All {len(beams)} final beams"):
        st.dataframe(F.final_beams_table(beams), hide_index=True)
    gold_dl, beam_dl = st.columns(2)
    with gold_dl:
        tree_downloads(lambda: gold_graph, "gold", trace, "gold tree")
    with beam_dl:
        tree_downloads(lambda: graph, f"beam{k}", trace, f"beam {k}")
    state.sync_query_params(view_params())


def depth(trace: dict) -> None:
    st.subheader("Sequential depth", anchor=L.DEPTH)
    d = trace["depth"]
    cols = st.columns(4)
    cols[0].metric("Measured", d["performed"], help="Merge steps run one after the other.")
    cols[1].metric("RIR bound", f"{d['rir_bound']:.1f}", help="W·log_W(n), the paper's bound.")
    cols[2].metric("EBT/BT-GRC", d["ebt"], help="n - 1: one merge per step, no chunks.")
    cols[3].metric("Balanced", d["balanced"], help="⌈log₂ n⌉: a fixed balanced tree.")
    st.caption(
        "How many merge steps must run one after another for this input. Chunks of one level "
        "run in parallel, so RIR pays only the widest chunk per level. (The chart of these "
        "numbers against every length is in the depth lab.)"
    )
    st.page_link(
        "pages/depth.py",
        label="The depth lab: these bounds for every length, and the baselines on this input",
        icon=":material/straighten:",
    )


def downloads(trace: dict) -> None:
    # One keyed container: teacher mode hides the whole section, heading and all.
    with st.container(key="explorer.downloads"):
        _downloads(trace)


def _downloads(trace: dict) -> None:
    st.subheader("Downloads")
    st.download_button(
        "Trace (JSON)",
        data=lambda: exports.trace_json(trace),
        file_name=f"{exports.file_stem(trace)}.json",
        mime="application/json",
        key="explorer.trace_json",
        on_click="ignore",
        icon=":material/download:",
        help="Everything the model computed for this input: levels, chunks, every merge step "
        "of every beam, alignments, final beams, depth (the keys of Trace.to_dict()).",
    )
    st.caption(
        "The trees download as DOT and GraphML under each tree; every chart's toolbar saves it "
        "as a PNG (the camera icon)."
    )


# --------------------------------------------------------------------------------------------


def render() -> None:
    loaded = state.current_model()
    settings = state.sidebar_settings()
    st.title("RIR Explorer")
    st.caption(
        "Watch Recursion in Recursion (RIR-EBT-GRC) parse and solve ListOps expressions: an "
        "outer recursion cuts the input into chunks, an inner beam search builds a tree in each."
    )
    expression_input()
    parsed = state.parse_expression(settings.expression)
    if parsed.error:
        show_error(parsed)
        state.sync_query_params()
        return
    try:
        trace = state.trace_for(loaded, parsed.canonical, settings)
    except ValueError as exc:
        st.error(F.md_escape(f"The model cannot run with these settings: {exc}"))
        return
    except Exception as exc:  # a bug must not show a traceback to a class; the log keeps it
        log.exception("trace failed")
        st.error(F.md_escape(f"The model failed on this input ({type(exc).__name__}: {exc})."))
        return
    answer(trace, loaded)
    trees(trace, parsed)
    recursion_views(trace)
    depth(trace)
    downloads(trace)


render()
