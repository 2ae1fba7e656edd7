"""The beam-alignment debugger's data and figures: trace data in, tables and plotly figures out.

After an outer level, every chunk ``c`` has K beams (partial trees) with log-scores ``s[c][b]``.
The next level needs K sequences ("slots"), each taking one beam from every chunk: K of the K^C
combinations. The alignment strategy (``sample``, ``rank``, ``random``, ``kbest``) chooses them;
this module shows what it chose and what that cost. Nothing here imports streamlit.

Glossary (trace keys, see ``rir_core/trace.py``): ``levels[l]["alignment"]`` holds
``chunk_scores`` / ``chunk_valid`` / ``chunk_probs`` (C x K), ``slots`` (K of
``{"picks": [beam per chunk], "score": sum of the picked scores, "valid"}``) and
``best_combination`` (every chunk's best beam); ``levels[l]["chunk_details"][c]["final_beams"]``
holds each chunk beam's subtree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.figures import (
    BOUNDARY,
    CHOSEN,
    FONT,
    GOLD,
    NEUTRAL,
    PRIMARY,
    _base_layout,
    span_text,
)
from rir_core.config import Alignment
from rir_core.trace import tree_span, tree_spans

STRATEGIES = [a.value for a in Alignment]  # sample, rank, random, kbest
# A beam whose share of its softmax is below this is "negligible": a slot spent on it, or a final
# beam weighted like it, barely moves the root vector.
NEGLIGIBLE = 1e-3
# Subtrees in hover texts are cut after this many characters.
SUBTREE_CHARS = 160
# Line colours of the slots (slot 0, the best beams everywhere, is the first).
SLOT_COLORS = (
    "#e07b39",
    "#2f6f9f",
    "#3a9a5b",
    "#8e44ad",
    "#c0392b",
    "#16a085",
    "#d4ac0d",
    "#7f8c8d",
)
COLUMNS_SHOWN = 16  # more chunks than this: the page draws a window of them
GAP = 1.0  # rows between the chunk beams (top) and the next level's slots (bottom)
X_BEAM, X_SLOT = -0.22, 0.22  # a column's beams sit left of its centre, the slots right


def aligned_levels(trace: dict[str, Any]) -> list[int]:
    """The outer levels followed by an alignment (those with more than one chunk)."""
    return [lv["level"] for lv in trace["levels"] if lv.get("alignment")]


def tree_text(tree: Any, tokens: list[str], limit: int = SUBTREE_CHARS) -> str:
    """A tree as nested brackets of its tokens, ``(([MAX 2) 9) ]``, cut after ``limit`` chars."""
    out: list[str] = []
    size = 0
    stack: list[Any] = [tree]
    while stack and size <= limit:
        t = stack.pop()
        if isinstance(t, str):
            piece = t
        elif isinstance(t, int):
            piece = tokens[t]
        else:
            stack.extend([")", t[1], " ", t[0]])
            piece = "("
        out.append(piece)
        size += len(piece)
    text = "".join(out)
    return text if not stack else text[:limit] + " …"


# --------------------------------------------------------------------------------------------
# The alignment picture: chunks as columns, beams as rows, lines from beams to the slots


@dataclass
class PictureData:
    """What the alignment picture draws, in plain lists (the unit tests read these).

    ``beams``: one dict per (chunk, beam) with ``chunk``, ``beam``, ``score``, ``prob``,
    ``rank`` and ``gap`` (see :func:`chunk_ranks`, :func:`chunk_gaps`), ``valid``, ``best``
    (the chunk's best beam), ``span``, ``subtree`` and ``picked_by`` (slots).
    ``slots``: one dict per slot with ``slot``, ``score`` (the sum of its picks' scores),
    ``delta`` (its score minus slot 0's),
    ``valid``, ``picks`` and ``duplicate_of`` (an earlier identical valid slot, or None).
    ``lines``: ``(chunk, beam, slot)``: beam ``beam`` of chunk ``chunk`` fills position
    ``chunk`` of slot ``slot``.
    """

    level: int
    chunks: int
    k: int
    spans: list[tuple[int, int]] = field(default_factory=list)  # each chunk's tokens
    beams: list[dict[str, Any]] = field(default_factory=list)
    slots: list[dict[str, Any]] = field(default_factory=list)
    lines: list[tuple[int, int, int]] = field(default_factory=list)


def duplicate_slots(slots: list[dict[str, Any]]) -> dict[int, int]:
    """Slot -> the first earlier valid slot with the same picks (a duplicate wastes a beam)."""
    first: dict[tuple[int, ...], int] = {}
    dup: dict[int, int] = {}
    for s, sl in enumerate(slots):
        if not sl["valid"]:
            continue
        key = tuple(sl["picks"])
        if key in first:
            dup[s] = first[key]
        else:
            first[key] = s
    return dup


def chunk_ranks(alignment: dict[str, Any]) -> list[list[int | None]]:
    """``(C, K)``: each beam's rank among its chunk's valid beams (0 = highest score; ties by
    lower index), None for an invalid beam."""
    out = []
    for scores, valid in zip(alignment["chunk_scores"], alignment["chunk_valid"], strict=True):
        order = sorted((b for b, ok in enumerate(valid) if ok), key=lambda b: (-scores[b], b))
        rank = {b: r for r, b in enumerate(order)}
        out.append([rank.get(b) for b in range(len(scores))])
    return out


def chunk_gaps(alignment: dict[str, Any]) -> list[list[float | None]]:
    """``(C, K)``: ``s[c][b] - max_b' s[c][b']`` over valid beams (log p relative to the
    chunk's best beam, <= 0), None for an invalid beam."""
    out = []
    for scores, valid in zip(alignment["chunk_scores"], alignment["chunk_valid"], strict=True):
        top = max((s for s, ok in zip(scores, valid, strict=True) if ok), default=0.0)
        out.append([s - top if ok else None for s, ok in zip(scores, valid, strict=True)])
    return out


def fmt_delta(x: float | None) -> str:
    """A score difference with enough digits to tell two slots apart: ``+0.0123``,
    ``-3.05e-06``, ``0``."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    return f"{x:+.4f}" if abs(x) >= 1e-3 else f"{x:+.2e}"


def picture_data(trace: dict[str, Any], level: int) -> PictureData:
    """The data of the alignment after ``level`` (which must have one)."""
    lv = trace["levels"][level]
    al = lv["alignment"]
    if not al:
        raise ValueError(f"level {level} has a single chunk: no alignment follows it.")
    tokens = trace["tokens"]
    n_chunks, k = len(al["chunk_scores"]), len(al["slots"])
    data = PictureData(level=level, chunks=n_chunks, k=k, spans=[tuple(c) for c in lv["chunks"]])
    dup = duplicate_slots(al["slots"])
    ranks, gaps = chunk_ranks(al), chunk_gaps(al)
    base = al["slots"][0]["score"]
    picked_by: dict[tuple[int, int], list[int]] = {}
    for s, sl in enumerate(al["slots"]):
        data.slots.append(
            {
                "slot": s,
                "score": sl["score"],
                "delta": sl["score"] - base,
                "valid": sl["valid"],
                "picks": list(sl["picks"]),
                "duplicate_of": dup.get(s),
            }
        )
        if sl["valid"]:
            for c, b in enumerate(sl["picks"]):
                picked_by.setdefault((c, b), []).append(s)
                data.lines.append((c, b, s))
    for c in range(n_chunks):
        final = lv["chunk_details"][c]["final_beams"]
        for b in range(k):
            tree = final[b]["tree"]
            data.beams.append(
                {
                    "chunk": c,
                    "beam": b,
                    "score": al["chunk_scores"][c][b],
                    "prob": al["chunk_probs"][c][b],
                    "rank": ranks[c][b],
                    "gap": gaps[c][b],
                    "valid": al["chunk_valid"][c][b],
                    "best": al["best_combination"][c] == b,
                    "span": tree_span(tree),
                    "subtree": tree_text(tree, tokens),
                    "picked_by": picked_by.get((c, b), []),
                }
            )
    return data


def slot_row(data: PictureData, slot: int) -> float:
    """The y of a slot's row (the chunk beams are rows 0..K-1 above it)."""
    return data.k + GAP + slot


def beam_colours(beams: list[dict[str, Any]], k: int, colour: str) -> dict[str, Any]:
    """The chunk-beam markers' colour settings for ``colour``: ``"rank"`` (0 = the chunk's
    best, dark), ``"gap"`` (log p - log p(best), from the widest gap drawn to 0) or ``"p"``
    (the probability within the chunk, on a fixed 0-1 scale)."""
    if colour == "rank":
        values = [d["rank"] if d["valid"] else k - 1 for d in beams]
        return {"color": values, "cmin": 0, "cmax": max(k - 1, 1), "reversescale": True,
                "title": "rank in<br>its chunk<br>(0 = best)"}  # fmt: skip
    if colour == "gap":
        values = [d["gap"] if d["valid"] else None for d in beams]
        low = min((v for v in values if v is not None), default=0.0)
        low = low if low < 0 else -1e-6  # all equal: a scale of one value still draws
        values = [low if v is None else v for v in values]
        return {"color": values, "cmin": low, "cmax": 0.0, "reversescale": False,
                "title": "log p −<br>log p(best)"}  # fmt: skip
    if colour == "p":
        values = [d["prob"] if d["valid"] else 0.0 for d in beams]
        return {"color": values, "cmin": 0, "cmax": 1, "reversescale": False, "title": "p"}
    raise ValueError(f"colour must be rank, gap or p, not {colour!r}.")


COLOUR_CAPTIONS = {
    "rank": "colour = the beam's rank within its chunk (0 = the chunk's best, darkest)",
    "gap": "colour = log p − log p(best beam of the chunk), from the widest gap drawn (light) "
    "to 0 (dark)",
    "p": "colour = the beam's probability within its chunk, on a fixed 0-1 scale",
}


def alignment_figure(
    data: PictureData,
    strategy: str,
    columns: tuple[int, int] | None = None,
    colour: str = "rank",
) -> go.Figure:
    """One picture of one alignment: chunk ``c`` is column ``c``; its K beams are the rows at the
    top (``y = beam``, colour: see :func:`beam_colours`, ring = the chunk's best beam, x =
    invalid); the next
    level's K slots are the rows below (``y = K + GAP + slot``); a line joins beam ``b`` of chunk
    ``c`` (``x = c + X_BEAM``) to every slot that took it (``x = c + X_SLOT``).

    ``columns = (first, last)`` draws only chunks ``first <= c < last`` (many chunks do not fit);
    the slot scores stay the sums over all chunks.

    Traces: ``chunk beams`` (markers), ``slot s`` (the lines of slot s, one trace per slot, so
    the legend toggles them), ``slots`` (markers).
    """
    lo, hi = columns or (0, data.chunks)
    first = min(max(lo, 0), data.chunks - 1)
    shown = range(first, max(min(hi, data.chunks), first + 1))  # at least one column
    marker = 13 if len(shown) <= 12 else 9 if len(shown) <= 24 else 6
    fig = go.Figure()
    by_slot: dict[int, tuple[list, list]] = {}
    for c, b, s in data.lines:
        if c not in shown:
            continue
        xs, ys = by_slot.setdefault(s, ([], []))
        xs += [c + X_BEAM, c + X_SLOT, None]
        ys += [b, slot_row(data, s), None]
    for s in range(data.k):
        if s not in by_slot:
            continue
        xs, ys = by_slot[s]
        dup = data.slots[s]["duplicate_of"]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=f"slot {s}" + (f" (= slot {dup})" if dup is not None else ""),
                hoverinfo="skip",
                line={
                    "color": SLOT_COLORS[s % len(SLOT_COLORS)],
                    "width": 2.5 if s == 0 else 1.2,
                    "dash": "dot" if dup is not None else "solid",
                },
                opacity=0.8,
            )
        )
    beams = [d for d in data.beams if d["chunk"] in shown]
    scale = beam_colours(beams, data.k, colour)
    fig.add_trace(
        go.Scatter(
            x=[d["chunk"] + X_BEAM for d in beams],
            y=[d["beam"] for d in beams],
            mode="markers",
            name="chunk beams",
            marker={
                "size": marker,
                "color": scale["color"],
                "colorscale": "Blues",
                "reversescale": scale["reversescale"],
                "cmin": scale["cmin"],
                "cmax": scale["cmax"],
                "symbol": ["circle" if d["valid"] else "x-thin-open" for d in beams],
                "line": {
                    "color": [CHOSEN if d["best"] else "#9aa9b5" for d in beams],
                    "width": [3 if d["best"] else 1 for d in beams],
                },
                "colorbar": {
                    "title": {"text": scale["title"]},
                    "thickness": 10,
                    "len": 0.45,
                    "y": 0.78,
                },
            },
            hovertext=[
                f"chunk {d['chunk']} · beam {d['beam']}"
                + (" (the chunk's best)" if d["best"] else "")
                + ("" if d["valid"] else " · INVALID (no such beam)")
                + f"<br>score {d['score']:.4f} · p = {d['prob']:.4f}"
                + (
                    f"<br>rank {d['rank']} in its chunk · log p − best {fmt_delta(d['gap'])}"
                    if d["valid"]
                    else ""
                )
                + f"<br>tokens [{d['span'][0]}, {d['span'][1]})"
                + f"<br>subtree {d['subtree']}"
                + "<br>taken by "
                + (", ".join(f"slot {s}" for s in d["picked_by"]) or "no slot")
                for d in beams
            ],
            hoverinfo="text",
            hoverlabel={"font_family": FONT},
        )
    )
    sx, sy, stext, scolor = [], [], [], []
    for sl in data.slots:
        for c, b in enumerate(sl["picks"]):
            if c not in shown:
                continue
            sx.append(c + X_SLOT)
            sy.append(slot_row(data, sl["slot"]))
            scolor.append(SLOT_COLORS[sl["slot"] % len(SLOT_COLORS)] if sl["valid"] else NEUTRAL)
            dup = sl["duplicate_of"]
            stext.append(
                f"slot {sl['slot']} · position {c}: beam {b} of chunk {c}"
                + f"<br>slot score {sl['score']:.4f} (sum over the chunks), "
                + f"{fmt_delta(sl['delta'])} vs slot 0"
                + ("" if sl["valid"] else "<br>INVALID slot (fewer combinations than K)")
                + (f"<br>duplicate of slot {dup}" if dup is not None else "")
            )
    fig.add_trace(
        go.Scatter(
            x=sx,
            y=sy,
            mode="markers",
            name="slots",
            marker={"size": max(marker - 4, 5), "symbol": "square", "color": scolor},
            hovertext=stext,
            hoverinfo="text",
        )
    )
    k = data.k
    ticks = list(range(k)) + [slot_row(data, s) for s in range(k)]
    labels = [f"beam {b}" for b in range(k)] + [
        f"slot {sl['slot']} "
        + ("(ref)" if sl["slot"] == 0 else f"({fmt_delta(sl['delta'])})")
        + (" dup" if sl["duplicate_of"] is not None else "")
        + ("" if sl["valid"] else " ✗")
        for sl in data.slots
    ]
    part = "" if len(shown) == data.chunks else f", chunks {shown.start}-{shown.stop - 1} shown"
    title = (
        f"After level {data.level} ({strategy}): {data.chunks} chunks × {k} beams (top) → "
        f"the {k} slots of level {data.level + 1} (bottom){part}"
    )
    _base_layout(fig, title, height=int(120 + 24 * (2 * k + GAP)))
    fig.add_hline(y=k - 0.5 + GAP / 2, line={"color": BOUNDARY, "width": 1, "dash": "dash"})
    fig.update_layout(
        showlegend=k <= len(SLOT_COLORS),
        legend={"orientation": "v", "x": 1.02, "y": 0.0, "yanchor": "bottom"},
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
    )
    few = len(shown) <= 10  # room for the token spans under the chunk numbers
    fig.update_xaxes(
        title_text="chunk (and its tokens)" if few else "chunk",
        tickmode="array",
        tickvals=list(shown),
        ticktext=[
            f"{c}<br>[{data.spans[c][0]},{data.spans[c][1]})" if few else str(c) for c in shown
        ],
        range=[shown.start - 0.6, shown.stop - 0.4],
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=ticks,
        ticktext=labels,
        autorange="reversed",
        showgrid=False,
        zeroline=False,
    )
    return fig


# --------------------------------------------------------------------------------------------
# What an alignment kept: score mass, the best combination, duplicates


def _logsumexp(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x != -math.inf]
    if not xs:
        return -math.inf
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))


def mass_kept(alignment: dict[str, Any]) -> float:
    """The share of the probability mass of all K^C combinations that the distinct valid slots
    hold: ``sum_slots exp(score) / prod_c sum_b exp(s[c][b])`` (valid beams only; in log space,
    so thousands of chunks do not underflow before the ratio)."""
    total = 0.0
    for scores, valid in zip(alignment["chunk_scores"], alignment["chunk_valid"], strict=True):
        total += _logsumexp([s for s, ok in zip(scores, valid, strict=True) if ok])
    dup = duplicate_slots(alignment["slots"])
    kept = _logsumexp(
        [sl["score"] for s, sl in enumerate(alignment["slots"]) if sl["valid"] and s not in dup]
    )
    if kept == -math.inf:
        return 0.0
    return min(1.0, math.exp(kept - total))


@dataclass
class StrategySummary:
    """One strategy's run on one input, for the side-by-side comparison."""

    strategy: str
    prediction: int
    probability: float  # p(prediction)
    correct: bool | None
    weights: list[float]  # final beam weights
    mass_kept: list[float]  # per aligned level
    best_kept: list[bool]  # per aligned level
    duplicates: int  # duplicate slots over all levels
    negligible: int  # valid final beams with weight < NEGLIGIBLE

    @property
    def best_survived(self) -> bool:
        return all(self.best_kept)

    @property
    def worst_mass(self) -> float | None:
        return min(self.mass_kept) if self.mass_kept else None


def summarize(trace: dict[str, Any]) -> StrategySummary:
    levels = [lv for lv in trace["levels"] if lv.get("alignment")]
    pred, truth = trace["prediction"], trace["ground_truth"]
    beams = trace["final_beams"]
    return StrategySummary(
        strategy=trace["settings"]["alignment"],
        prediction=pred,
        probability=trace["probabilities"][pred],
        correct=None if truth is None else pred == truth,
        weights=[b["weight"] for b in beams],
        mass_kept=[mass_kept(lv["alignment"]) for lv in levels],
        best_kept=[bool(lv["alignment"]["best_kept"]) for lv in levels],
        duplicates=sum(len(duplicate_slots(lv["alignment"]["slots"])) for lv in levels),
        negligible=sum(b["valid"] and b["weight"] < NEGLIGIBLE for b in beams),
    )


def percent(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.1%}" if x >= 1e-3 else f"{x:.1e}"


def comparison_table(summaries: list[StrategySummary], current: str) -> pd.DataFrame:
    """One row per strategy: prediction, whether right, the weights, mass kept, best kept."""
    rows = []
    for sm in summaries:
        lost = [i for i, ok in enumerate(sm.best_kept) if not ok]
        rows.append(
            {
                "strategy": sm.strategy + (" (sidebar)" if sm.strategy == current else ""),
                "prediction": sm.prediction,
                "p": round(sm.probability, 3),
                "correct": sm.correct,
                "final weights": " ".join(f"{w:.2f}" for w in sm.weights),
                "mass kept (worst level)": percent(sm.worst_mass),
                "best combination survived": "yes"
                if sm.best_survived
                else f"no (lost after level {', '.join(map(str, lost))})",
                "duplicate slots": sm.duplicates,
            }
        )
    return pd.DataFrame(rows)


def weights_figure(summaries: list[StrategySummary], current: str) -> go.Figure:
    """Final beam weights per strategy, grouped by beam (trace ``weights <strategy>``)."""
    fig = go.Figure()
    colors = dict(zip(STRATEGIES, (CHOSEN, PRIMARY, NEUTRAL, GOLD), strict=True))
    for sm in summaries:
        fig.add_trace(
            go.Bar(
                x=list(range(len(sm.weights))),
                y=sm.weights,
                name=f"weights {sm.strategy}",
                marker={
                    "color": colors.get(sm.strategy, PRIMARY),
                    "line": {"color": "black", "width": 2 if sm.strategy == current else 0},
                },
                hovertemplate=f"{sm.strategy}, beam %{{x}}: weight %{{y:.3f}}<extra></extra>",
            )
        )
    _base_layout(fig, "Final beam weights per strategy (outlined: the sidebar's)", height=260)
    fig.update_layout(barmode="group", showlegend=True, legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(title_text="final beam", dtick=1)
    fig.update_yaxes(title_text="weight", range=[0, 1])
    return fig


def seed_distribution_figure(
    predictions: dict[str, list[int]], ground_truth: int | None
) -> go.Figure:
    """How often each value was predicted over many seeds, per strategy (traces
    ``seeds <strategy>``); the ground truth is marked with a green band."""
    fig = go.Figure()
    colors = dict(zip(STRATEGIES, (CHOSEN, PRIMARY, NEUTRAL, GOLD), strict=True))
    for strategy, preds in predictions.items():
        counts = [preds.count(v) for v in range(10)]
        fig.add_trace(
            go.Bar(
                x=list(range(10)),
                y=counts,
                name=f"seeds {strategy}",
                marker={"color": colors.get(strategy, PRIMARY)},
                hovertemplate=f"{strategy}: value %{{x}} in %{{y}} of {len(preds)} seeds"
                "<extra></extra>",
            )
        )
    if ground_truth is not None:
        fig.add_vrect(
            x0=ground_truth - 0.5,
            x1=ground_truth + 0.5,
            fillcolor="rgba(58, 154, 91, 0.15)",
            line={"width": 0},
            layer="below",
        )
    n = max((len(p) for p in predictions.values()), default=0)
    _base_layout(fig, f"Predictions over {n} seeds (green band: ground truth)", height=280)
    fig.update_layout(barmode="group", showlegend=True, legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(title_text="predicted value", dtick=1, range=[-0.5, 9.5])
    fig.update_yaxes(title_text="seeds")
    return fig


# --------------------------------------------------------------------------------------------
# Diagnostics


def _crosses(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[0] < a[1] < b[1] or b[0] < a[0] < b[1] < a[1]


def chunk_gold_agreement(
    tree: Any, span: tuple[int, int], gold_spans: list[list[int]]
) -> tuple[int, int, int]:
    """(gold operators inside ``span``, of those a node of ``tree``, tree merges crossing one).

    Only gold operators wholly inside the chunk count: an operator cut by a chunk boundary
    cannot be one node of any chunk's tree, whatever the beam does.
    """
    inside = [(a, b) for a, b in gold_spans if span[0] <= a and b <= span[1]]
    have = set(tree_spans(tree))
    found = sum(g in have for g in inside)
    crossing = sum(any(_crosses(m, g) for g in inside) for m in have)
    return len(inside), found, crossing


def diagnostics(trace: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Tables of what looks wrong in one trace's alignments (empty tables: nothing found).

    ``lost``: levels where no slot holds every chunk's best beam. ``duplicates``: slots equal
    to an earlier slot. ``negligible``: picks of chunk beams with p < NEGLIGIBLE and final
    beams with weight < NEGLIGIBLE. ``gold``: chunks whose best beam crosses a gold bracket
    inside the chunk (with the beam of that chunk that agrees best with the gold tree).
    """
    tokens, gold = trace["tokens"], trace["gold_spans"]
    lost, dups, negligible, disagree = [], [], [], []
    for lv in trace["levels"]:
        al = lv.get("alignment")
        if not al:
            continue
        ell = lv["level"]
        if not al["best_kept"]:
            best_score = sum(al["chunk_scores"][c][b] for c, b in enumerate(al["best_combination"]))
            top = max((sl["score"] for sl in al["slots"] if sl["valid"]), default=float("nan"))
            lost.append(
                {
                    "after level": ell,
                    "chunks": len(al["chunk_scores"]),
                    "best combination score": round(best_score, 3),
                    "best slot score": round(top, 3),
                    "best combination": " ".join(map(str, al["best_combination"])),
                }
            )
        for s, first in duplicate_slots(al["slots"]).items():
            dups.append({"after level": ell, "slot": s, "same as slot": first})
        for s, sl in enumerate(al["slots"]):
            if not sl["valid"]:
                continue
            for c, b in enumerate(sl["picks"]):
                p = al["chunk_probs"][c][b]
                if p < NEGLIGIBLE:
                    negligible.append(
                        {
                            "where": f"after level {ell}",
                            "what": f"slot {s} took beam {b} of chunk {c}",
                            "p or weight": f"{p:.1e}",
                        }
                    )
        for c, detail in enumerate(lv["chunk_details"]):
            best = al["best_combination"][c]
            beams = detail["final_beams"]
            span = tuple(lv["chunks"][c])
            inside, found, crossing = chunk_gold_agreement(beams[best]["tree"], span, gold)
            if inside and crossing:
                scores = [
                    (chunk_gold_agreement(b["tree"], span, gold)[2], k)
                    for k, b in enumerate(beams)
                    if b["valid"]
                ]
                fewest, which = min(scores)
                disagree.append(
                    {
                        "level": ell,
                        "chunk": c,
                        "tokens": f"[{span[0]}, {span[1]})",
                        "gold operators inside": inside,
                        "found by best beam": found,
                        "crossing merges (best beam)": crossing,
                        "most gold-like beam": f"beam {which} ({fewest} crossing)",
                        "text": span_text(tokens, span),
                    }
                )
    for k, b in enumerate(trace["final_beams"]):
        if b["valid"] and b["weight"] < NEGLIGIBLE:
            negligible.append(
                {"where": "final beams", "what": f"beam {k}", "p or weight": f"{b['weight']:.1e}"}
            )
    return {
        "lost": pd.DataFrame(lost),
        "duplicates": pd.DataFrame(dups),
        "negligible": pd.DataFrame(negligible),
        "gold": pd.DataFrame(disagree),
    }


# --------------------------------------------------------------------------------------------
# Many seeds, many expressions


def predictions_over_seeds(
    model: Any, text: str, seeds: Sequence[int], *, batch_size: int = 16, **settings: Any
) -> list[int]:
    """The model's prediction for ``text`` under every seed (batched: one row per seed)."""
    import torch

    out: list[int] = []
    ids, mask, lengths = model.encode_texts([text])
    with torch.inference_mode():
        for start in range(0, len(seeds), batch_size):
            part = list(seeds[start : start + batch_size])
            b = len(part)
            logits = model(
                ids.expand(b, -1),
                mask.expand(b, -1),
                torch.tensor(part, dtype=torch.int64),
                lengths=lengths * b,
                **settings,
            )  # (b, Y)
            out += logits.argmax(-1).tolist()
    return out


@dataclass
class DatasetRun:
    """Predictions of every strategy on a generated batch (see :func:`run_dataset`)."""

    texts: list[str]
    lengths: list[int]
    labels: list[int]
    predictions: dict[str, list[int]]  # strategy -> one per example
    seconds: float = 0.0

    def bucket_stats(self, bucket: int) -> list[dict[str, Any]]:
        """Per length bucket (and "all", last): ``tokens`` (its label), ``n`` and, per
        strategy, ``hits`` (correct predictions)."""
        rows = []
        keys = sorted({n // bucket for n in self.lengths})
        for key in [*keys, None]:
            idx = [i for i, n in enumerate(self.lengths) if key is None or n // bucket == key]
            rows.append(
                {
                    "tokens": "all"
                    if key is None
                    else f"{key * bucket}-{key * bucket + bucket - 1}",
                    "n": len(idx),
                    "hits": {
                        s: sum(preds[i] == self.labels[i] for i in idx)
                        for s, preds in self.predictions.items()
                    },
                }
            )
        return rows

    def accuracy_table(self, bucket: int) -> pd.DataFrame:
        """Accuracy (%) per length bucket (rows) and strategy (columns), plus "all"."""
        rows = []
        for st in self.bucket_stats(bucket):
            row: dict[str, Any] = {"tokens": st["tokens"], "n": st["n"]}
            for strategy, hits in st["hits"].items():
                row[strategy] = round(100 * hits / st["n"], 1) if st["n"] else None
            rows.append(row)
        return pd.DataFrame(rows)

    def failures(self) -> list[int]:
        """Examples that at least one strategy gets wrong (shortest first)."""
        bad = [
            i
            for i in range(len(self.texts))
            if any(p[i] != self.labels[i] for p in self.predictions.values())
        ]
        return sorted(bad, key=lambda i: self.lengths[i])

    def disagreements(self) -> list[int]:
        """Examples on which the strategies do not all predict the same value (shortest
        first)."""
        differ = [
            i for i in range(len(self.texts)) if len({p[i] for p in self.predictions.values()}) > 1
        ]
        return sorted(differ, key=lambda i: self.lengths[i])


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``hits / n`` (95% for z = 1.96), in percent:
    unlike ``p ± z·sqrt(p(1-p)/n)`` it stays inside 0-100 and is honest for n = 1."""
    if n == 0:
        return 0.0, 100.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def run_dataset(
    model: Any,
    examples: Sequence[Any],
    strategies: Sequence[str],
    *,
    seed: int,
    beam_size: int,
    chunk_width: int | None,
    batch_size: int = 16,
) -> Iterator[tuple[int, int, DatasetRun | None]]:
    """Predict every example with every strategy, batched by length.

    Yields ``(done, total, None)`` after every batch (for a progress bar), then
    ``(total, total, run)``.
    """
    import torch

    from rir_core.data import encode_examples

    start = time.perf_counter()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    total = len(examples) * len(strategies)
    done = 0
    preds = {s: [0] * len(examples) for s in strategies}
    with torch.inference_mode():
        for strategy in strategies:
            for lo in range(0, len(order), batch_size):
                idx = order[lo : lo + batch_size]
                batch = [examples[i] for i in idx]
                ids, mask, _ = encode_examples(batch)  # (B, L), (B, L)
                logits = model(
                    ids.to(model.device),
                    mask.to(model.device),
                    seed,
                    lengths=[len(ex) for ex in batch],
                    beam_size=beam_size,
                    chunk_width=chunk_width,
                    alignment=strategy,
                )
                for i, p in zip(idx, logits.argmax(-1).tolist(), strict=True):
                    preds[strategy][i] = p
                done += len(idx)
                yield done, total, None
    run = DatasetRun(
        texts=[" ".join(ex.tokens) for ex in examples],
        lengths=[len(ex) for ex in examples],
        labels=[ex.label for ex in examples],
        predictions=preds,
        seconds=time.perf_counter() - start,
    )
    yield total, total, run


STRATEGY_SYMBOLS = ("circle", "square", "diamond", "triangle-up")
OFFSET = 0.12  # the strategies' points sit side by side within a bucket, never on top


def accuracy_figure(stats: list[dict[str, Any]], strategies: Sequence[str]) -> go.Figure:
    """Accuracy per length bucket, one series per strategy (traces ``accuracy <strategy>``)
    from :meth:`DatasetRun.bucket_stats`: each point offset sideways within its bucket and
    drawn with its own marker, so equal accuracies never hide each other; error bars are the
    95% Wilson interval; the bucket's expression count is under its label."""
    rows = [r for r in stats if r["tokens"] != "all"]
    colors = dict(zip(STRATEGIES, (CHOSEN, PRIMARY, NEUTRAL, GOLD), strict=True))
    fig = go.Figure()
    middle = (len(strategies) - 1) / 2
    for j, s in enumerate(strategies):
        acc, lo, hi, text = [], [], [], []
        for r in rows:
            hits, n = r["hits"][s], r["n"]
            a = 100 * hits / n
            low, high = wilson_interval(hits, n)
            acc.append(a)
            lo.append(a - low)
            hi.append(high - a)
            text.append(
                f"{s}, {r['tokens']} tokens: {a:.1f}% ({hits} of {n}), "
                f"95% interval {low:.0f}-{high:.0f}%"
            )
        fig.add_trace(
            go.Scatter(
                x=[i + (j - middle) * OFFSET for i in range(len(rows))],
                y=acc,
                mode="lines+markers",
                name=f"accuracy {s}",
                line={"color": colors.get(s, PRIMARY), "width": 1, "dash": "dot"},
                marker={
                    "symbol": STRATEGY_SYMBOLS[j % len(STRATEGY_SYMBOLS)],
                    "size": 9,
                    "color": colors.get(s, PRIMARY),
                    "line": {"color": "black", "width": 0.5},
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": hi,
                    "arrayminus": lo,
                    "thickness": 1,
                    "width": 3,
                },  # fmt: skip
                hovertext=text,
                hoverinfo="text",
            )
        )
    fig.add_hline(y=10, line={"color": NEUTRAL, "dash": "dot"}, annotation_text="chance (10%)")
    _base_layout(
        fig, "Accuracy per length bucket and strategy (bars: 95% Wilson interval)", height=320
    )
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.35})
    fig.update_xaxes(
        title_text="tokens (expressions in the bucket)",
        tickmode="array",
        tickvals=list(range(len(rows))),
        ticktext=[f"{r['tokens']}<br>n = {r['n']}" for r in rows],
        range=[-0.5, len(rows) - 0.5],
    )
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 100])
    return fig
