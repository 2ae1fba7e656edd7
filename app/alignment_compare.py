"""Why the alignment strategies differ: the four side by side, each slot in detail, a diff of two.

The beam-alignment debugger's comparison views (SPEC section 4), from traces to tables and
plotly figures; nothing here imports streamlit. All four strategies run on the same input and
seed. After the first outer level the chunks' beams are the same for every strategy (the inner
search never sees the alignment); only the K slots built from them differ. Above that level the
chunk beams themselves differ, because each strategy fed its own slots upwards.

A chunk's beams are compared with the chunk's own best: a beam's **rank** (0 = best, by score
among the valid beams) and its **gap** ``log p - log p(best) = s - s_best`` (<= 0; the log
softmax normaliser cancels). Both stay readable where probabilities do not: with K = 7 nearly
equal beams every p is about 0.14.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.alignment_lab import (
    STRATEGIES,
    chunk_gaps,
    chunk_ranks,
    duplicate_slots,
    fmt_delta,
)
from app.figures import CHOSEN, NEUTRAL, _base_layout

# Ranks 0 (the chunk's best) .. K-1: dark to light, so the best beams read as "solid".
RANK_SCALE = [[0.0, "#08306b"], [0.35, "#2f6f9f"], [0.7, "#9ecae1"], [1.0, "#f2f7fb"]]
CELL_TEXT_MAX_CHUNKS = 40  # beam numbers are written in the cells up to this many chunks
GRID_MAX_CHUNKS = 16  # up to this many chunks the panels sit 2 x 2 (one screen), else stacked
ROW_PX = 20  # a slot row's height (px)
PANEL_GAP_PX = 64  # between two panels: the upper one's chunk numbers, the lower one's title


@dataclass
class SlotInfo:
    """One slot of one alignment. ``non_best``: ``(chunk, beam, rank, gap)`` for every chunk
    where the slot took another beam than the chunk's best; ``delta``: its score minus slot
    0's; ``duplicate_of``: an earlier valid slot with the same picks, or None."""

    slot: int
    valid: bool
    score: float
    delta: float
    non_best: list[tuple[int, int, int | None, float | None]]
    duplicate_of: int | None


def slot_infos(alignment: dict[str, Any]) -> list[SlotInfo]:
    """Every slot of an alignment (``levels[l]["alignment"]`` of a trace)."""
    ranks, gaps = chunk_ranks(alignment), chunk_gaps(alignment)
    best = alignment["best_combination"]
    dup = duplicate_slots(alignment["slots"])
    base = alignment["slots"][0]["score"]
    out = []
    for s, sl in enumerate(alignment["slots"]):
        non_best = [
            (c, b, ranks[c][b], gaps[c][b]) for c, b in enumerate(sl["picks"]) if b != best[c]
        ]
        out.append(
            SlotInfo(s, bool(sl["valid"]), sl["score"], sl["score"] - base, non_best, dup.get(s))
        )
    return out


def non_best_text(info: SlotInfo, limit: int = 12) -> str:
    """``chunk 3: beam 2 (rank 1, -0.0123); ...``, cut after ``limit`` chunks."""
    parts = [
        f"chunk {c}: beam {b} (rank {r}, {fmt_delta(g)})" for c, b, r, g in info.non_best[:limit]
    ]
    more = len(info.non_best) - limit
    return "; ".join(parts) + (f"; … {more} more" if more > 0 else "") if parts else "none"


def slot_table(alignment: dict[str, Any]) -> pd.DataFrame:
    """One row per slot: its score relative to slot 0, the chunks where it took a non-best
    beam, and whether it duplicates an earlier slot."""
    rows = []
    for info in slot_infos(alignment):
        rows.append(
            {
                "slot": info.slot,
                "score − slot 0": fmt_delta(info.delta) if info.slot else "0 (reference)",
                "score": f"{info.score:.6f}",
                "non-best chunks": len(info.non_best),
                "which (beam, rank, gap to the chunk's best)": non_best_text(info),
                "duplicate of": "-" if info.duplicate_of is None else f"slot {info.duplicate_of}",
                "valid": info.valid,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The four strategies side by side


def verdict(trace: dict[str, Any]) -> str:
    """``predicts 3 (p = 0.612) · truth 3 ✓``."""
    pred, truth = trace["prediction"], trace["ground_truth"]
    p = trace["probabilities"][pred]
    mark = "" if truth is None else (" ✓" if pred == truth else " ✗")
    return f"predicts {pred} (p = {p:.3f}) · truth {'-' if truth is None else truth}{mark}"


def strategies_figure(traces: dict[str, dict[str, Any]], level: int, current: str) -> go.Figure:
    """Small multiples, one panel per strategy (2 x 2 up to ``GRID_MAX_CHUNKS`` chunks, else
    stacked; in ``traces`` order): the slots
    (rows) of the alignment after ``level`` against the chunks (columns); a cell's colour is the
    RANK within its chunk of the beam the slot took (0, dark, = the chunk's best), its text the
    beam number. Row labels give each slot's score relative to slot 0 and duplicates; panel
    titles the prediction, p and the ground truth; the sidebar's strategy is framed.

    Traces: ``picks <strategy>`` (heatmaps). Readable at 34 chunks (a column is about 30 px).
    """
    names = list(traces)
    titles = []
    for s in names:
        mark = "▶ " if s == current else ""
        side = " (sidebar)" if s == current else ""
        title = f"{mark}{s}{side}: {verdict(traces[s])}"
        titles.append(f"<b>{title}</b>" if s == current else title)
    first = traces[names[0]]["levels"][level]["alignment"]
    k, n_chunks = len(first["slots"]), len(first["chunk_scores"])
    cols = 2 if n_chunks <= GRID_MAX_CHUNKS and len(names) > 1 else 1
    rows = math.ceil(len(names) / cols)
    plot_px = rows * k * ROW_PX + (rows - 1) * PANEL_GAP_PX  # the panels and the gaps between
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        vertical_spacing=PANEL_GAP_PX / plot_px,
        horizontal_spacing=0.17,  # room for the right panels' slot labels
    )
    text_in_cells = n_chunks <= CELL_TEXT_MAX_CHUNKS
    for i, s in enumerate(names):
        row, col = i // cols + 1, i % cols + 1
        al = traces[s]["levels"][level]["alignment"]
        ranks, gaps = chunk_ranks(al), chunk_gaps(al)
        infos = slot_infos(al)
        z, text, hover = [], [], []
        for info, sl in zip(infos, al["slots"], strict=True):
            z.append([ranks[c][b] if info.valid else None for c, b in enumerate(sl["picks"])])
            text.append([str(b) for b in sl["picks"]])
            hover.append(
                [
                    f"{s} · slot {info.slot} · chunk {c}: beam {b}"
                    f"<br>rank {ranks[c][b]} in its chunk · log p − best {fmt_delta(gaps[c][b])}"
                    f"<br>slot score − slot 0: {fmt_delta(info.delta)}"
                    + (
                        f"<br>duplicate of slot {info.duplicate_of}"
                        if info.duplicate_of is not None
                        else ""
                    )
                    for c, b in enumerate(sl["picks"])
                ]
            )
        labels = [
            f"slot {i.slot} "
            + ("(ref)" if i.slot == 0 else fmt_delta(i.delta))
            + (f" = {i.duplicate_of}" if i.duplicate_of is not None else "")
            + ("" if i.valid else " ✗")
            for i in infos
        ]
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=list(range(n_chunks)),
                y=labels,
                text=text if text_in_cells else None,
                texttemplate="%{text}" if text_in_cells else None,
                textfont={"size": 10},
                hovertext=hover,
                hoverinfo="text",
                zmin=0,
                zmax=max(k - 1, 1),
                colorscale=RANK_SCALE,
                showscale=i == 0,
                colorbar={
                    "title": {"text": "rank of the<br>picked beam<br>(0 = chunk's best)"},
                    "thickness": 10,
                    "len": min(1.0, 200 / plot_px),
                    "y": 1.0,
                    "yanchor": "top",
                    "dtick": 1,
                },
                xgap=1,
                ygap=1,
                name=f"picks {s}",
            ),
            row=row,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", tickfont={"size": 10}, row=row, col=col)
        fig.update_xaxes(
            title_text="chunk" if row == rows else None,
            dtick=1 if n_chunks <= CELL_TEXT_MAX_CHUNKS else 5,
            showgrid=False,
            row=row,
            col=col,
        )
        if s == current:  # frame the panel (its plot area, below its title)
            axis = fig.get_subplot(row, col)
            fig.add_shape(
                type="rect",
                xref="paper",
                yref="paper",
                x0=axis.xaxis.domain[0] - 0.004,
                x1=axis.xaxis.domain[1] + 0.004,
                y0=axis.yaxis.domain[0] - 0.004,
                y1=axis.yaxis.domain[1] + 0.004,
                line={"color": CHOSEN, "width": 3},
                fillcolor="rgba(0,0,0,0)",
            )
    height = plot_px + 110  # the figure's title and the first panel's title; the axis title
    _base_layout(
        fig,
        f"The four strategies after level {level}: which beam every slot took "
        f"({n_chunks} chunks × {k} slots)",
        height=height,
    )
    fig.update_layout(margin={"l": 10, "r": 10, "t": 70, "b": 40})
    fig.update_annotations(font={"size": 13})
    return fig


# --------------------------------------------------------------------------------------------
# A diff of two strategies


def diff_slots(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    """Per aligned level and slot where the two traces' picks differ: the chunks that differ
    (``chunk: beam in A → beam in B``) and both slots' scores relative to their slot 0.

    ``same chunk beams``: whether the chunks' beams (scores) are the same in both runs - true
    after level 0; above it each strategy fed its own slots upwards, so "beam 2" of a chunk
    may be a different tree in A and in B.
    """
    rows = []
    for lv_a, lv_b in zip(a["levels"], b["levels"], strict=True):
        al_a, al_b = lv_a.get("alignment"), lv_b.get("alignment")
        if not al_a or not al_b:
            continue
        same = al_a["chunk_scores"] == al_b["chunk_scores"]
        info_a, info_b = slot_infos(al_a), slot_infos(al_b)
        for ia, ib, sa, sb in zip(info_a, info_b, al_a["slots"], al_b["slots"], strict=True):
            differ = [
                c for c, (x, y) in enumerate(zip(sa["picks"], sb["picks"], strict=True)) if x != y
            ]
            if not differ and ia.valid == ib.valid:
                continue
            shown = "; ".join(
                f"chunk {c}: {sa['picks'][c]} → {sb['picks'][c]}" for c in differ[:12]
            )
            more = len(differ) - 12
            rows.append(
                {
                    "after level": lv_a["level"],
                    "slot": ia.slot,
                    "chunks that differ": len(differ),
                    "which (beam in A → beam in B)": shown
                    + (f"; … {more} more" if more > 0 else ""),
                    "A: score − slot 0": fmt_delta(ia.delta),
                    "B: score − slot 0": fmt_delta(ib.delta),
                    "same chunk beams": same,
                }
            )
    return pd.DataFrame(rows)


def diff_weights(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    """The final beams of the two runs: weights, their change, and whether beam k is the same
    tree in both."""
    rows = []
    for k, (x, y) in enumerate(zip(a["final_beams"], b["final_beams"], strict=True)):
        rows.append(
            {
                "final beam": k,
                "weight A": round(x["weight"], 4),
                "weight B": round(y["weight"], 4),
                "B − A": fmt_delta(y["weight"] - x["weight"]),
                "same tree": json.dumps(x["tree"]) == json.dumps(y["tree"]),
            }
        )
    return pd.DataFrame(rows)


def diff_figure(a: dict[str, Any], b: dict[str, Any]) -> go.Figure:
    """Final beam weights of A and B side by side (traces ``A <strategy>``, ``B <strategy>``);
    beams whose tree differs between the runs are hatched in B."""
    sa, sb = a["settings"]["alignment"], b["settings"]["alignment"]
    fig = go.Figure()
    xs = list(range(len(a["final_beams"])))
    same = [
        json.dumps(x["tree"]) == json.dumps(y["tree"])
        for x, y in zip(a["final_beams"], b["final_beams"], strict=True)
    ]
    for tag, tr, color in (("A", a, NEUTRAL), ("B", b, CHOSEN)):
        fig.add_trace(
            go.Bar(
                x=xs,
                y=[fb["weight"] for fb in tr["final_beams"]],
                name=f"{tag} {tr['settings']['alignment']}",
                marker={
                    "color": color,
                    "pattern": {"shape": ["" if tag == "A" or s else "/" for s in same]},
                },
                hovertemplate=f"{tag} ({tr['settings']['alignment']}), final beam %{{x}}: "
                "weight %{y:.4f}<extra></extra>",
            )
        )
    _base_layout(
        fig,
        f"Final beam weights: A = {sa}, B = {sb} (hatched: B's beam is another tree than A's)",
        height=280,
    )
    fig.update_layout(barmode="group", showlegend=True, legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(title_text="final beam", dtick=1)
    fig.update_yaxes(title_text="weight", rangemode="tozero")
    return fig


def disagreeing_pair(traces: dict[str, dict[str, Any]], current: str) -> tuple[str, str]:
    """A default pair for the diff: the sidebar's strategy and the first other one that
    predicts differently (else the next strategy)."""
    others = [s for s in STRATEGIES if s != current and s in traces]
    differ = [s for s in others if traces[s]["prediction"] != traces[current]["prediction"]]
    return current, (differ or others)[0]
