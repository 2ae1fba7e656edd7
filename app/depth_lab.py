"""The depth-bound lab's formulas, figures and model runs. Nothing here imports streamlit.

Sequential depth = how many merge steps must run one after another (steps that can run in
parallel count once). For an input of ``n`` tokens:

==========================  ================================================================
RIR, exact (1.5·W rule)     every outer level cuts its ``m`` nodes into chunks of ``W`` when
                            ``m >= 1.5 W`` (else one chunk); the chunks of a level run in
                            parallel, so a level costs its widest chunk minus one merge
RIR, the paper's bound      ``W * log_W(n)``: about ``log_W(n)`` levels of at most ``W`` merges
EBT-GRC / BT-GRC            ``n - 1``: one merge per step over the whole input
balanced tree (BBT-GRC)     ``ceil(log2 n)``: pairs merged level by level, blind to structure
==========================  ================================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from app.figures import BOUNDARY, CHOSEN, GOLD, NEUTRAL, PRIMARY, _base_layout
from rir_core.balanced import balanced_depth
from rir_core.outer import depth_performed, rir_bound, schedule

MODEL_TYPES = ("rir_ebt_grc", "ebt_grc", "bt_grc", "bbt_grc")
MODEL_NAMES = {
    "rir_ebt_grc": "RIR-EBT-GRC",
    "ebt_grc": "EBT-GRC",
    "bt_grc": "BT-GRC",
    "bbt_grc": "BBT-GRC",
}
# BT-GRC composes every adjacent pair at every step (n^2 work): past this many tokens the lab
# runs it only when asked (~1 s at 300 tokens on one busy core, ~10 s at 1,000).
BT_GRC_AUTO_TOKENS = 300
N_MAX = 10_000  # the chart's x range


def depths(n: int, width: int) -> dict[str, float]:
    """The four depths of an input of ``n`` tokens with chunk width ``width``."""
    return {
        "rir": depth_performed(n, width),
        "rir_bound": rir_bound(n, width),
        "ebt": max(n - 1, 0),
        "balanced": balanced_depth(n),
    }


CURVES = (  # key, legend name, colour, dash
    ("rir", "RIR exact (1.5·W rule)", CHOSEN, "solid"),
    ("rir_bound", "RIR bound W·log_W(n)", PRIMARY, "dash"),
    ("ebt", "EBT/BT-GRC n − 1", NEUTRAL, "solid"),
    ("balanced", "balanced ⌈log₂ n⌉", GOLD, "solid"),
)


def curve_points(n_max: int = N_MAX) -> list[int]:
    """Lengths to draw: every n up to 200, then ~60 per decade (the RIR curve has steps), and
    the round numbers (1, 1.5, 2, 3, 5, 7 times a power of ten) so that hovers hit them."""
    pts = set(range(2, min(n_max, 200) + 1))
    pts |= {int(m * 10**e) for e in range(2, 6) for m in (1, 1.5, 2, 3, 5, 7)}
    pts = {p for p in pts if p <= n_max} | {n_max}
    n = 200.0
    while n < n_max:
        n *= 10 ** (1 / 60)
        pts.add(min(int(round(n)), n_max))
    return sorted(pts)


def depth_table(ns: list[int], width: int) -> list[dict[str, Any]]:
    """Rows of the numbers behind the chart: the chunk schedule and the four depths per n."""
    rows = []
    for n in ns:
        d = depths(n, width)
        rows.append(
            {
                "tokens n": n,
                "levels": len(schedule(n, width)),
                "chunks per level": " → ".join(str(len(s)) for s in schedule(n, width)),
                "RIR exact": int(d["rir"]),
                "RIR bound W·log_W(n)": round(d["rir_bound"], 1),
                "EBT/BT n − 1": int(d["ebt"]),
                "balanced ⌈log₂ n⌉": int(d["balanced"]),
            }
        )
    return rows


def depth_curves_figure(
    width: int,
    n_pick: int | None = None,
    measured: tuple[int, int] | None = None,
    n_max: int = N_MAX,
) -> go.Figure:
    """Sequential depth against length, log axes: one trace per formula (names in
    :data:`CURVES`), a dotted line at ``n_pick`` with its four values (trace ``n = ...``), and the
    current expression's ``measured = (n, depth)`` as a star (trace ``this expression ...``)."""
    ns = curve_points(n_max)
    table = [depths(n, width) for n in ns]
    fig = go.Figure()
    for key, name, color, dash in CURVES:
        fig.add_trace(
            go.Scatter(
                x=ns,
                y=[max(row[key], 0.5) for row in table],  # log axes: n = 1 would be 0
                mode="lines",
                name=name,
                line={"color": color, "dash": dash, "width": 2.5 if key == "rir" else 1.8},
                hovertemplate=f"{name}<br>n = %{{x}}: %{{y:.1f}} steps<extra></extra>",
            )
        )
    if n_pick is not None:
        d = depths(n_pick, width)
        fig.add_vline(x=n_pick, line={"color": "#888", "dash": "dot", "width": 1})
        fig.add_trace(
            go.Scatter(
                x=[n_pick] * len(CURVES),
                y=[max(d[key], 0.5) for key, *_ in CURVES],
                mode="markers",
                name=f"n = {n_pick}",
                marker={"size": 8, "color": [c for _, _, c, _ in CURVES], "symbol": "circle"},
                text=[name for _, name, _, _ in CURVES],
                hovertemplate="%{text}: %{y:.1f} at n = %{x}<extra></extra>",
                showlegend=False,
            )
        )
    if measured is not None:
        n, depth = measured
        fig.add_trace(
            go.Scatter(
                x=[n],
                y=[max(depth, 0.5)],
                mode="markers",
                name=f"this expression ({n} tokens, {depth} steps)",
                marker={
                    "size": 16,
                    "symbol": "star",
                    "color": BOUNDARY,
                    "line": {"color": "white", "width": 1},
                },
                hovertemplate=f"the current expression: n = {n}, "
                f"{depth} sequential merges measured<extra></extra>",
            )
        )
    _base_layout(fig, f"Sequential depth vs length (chunk width W = {width})", height=430)
    # The legend inside the plot's empty top-left corner (every curve rises to the right): below
    # the plot it ran into the x-axis title at a projector's text sizes (teacher mode).
    fig.update_layout(
        showlegend=True,
        legend={"x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top",
                "bgcolor": "rgba(255, 255, 255, 0.85)"},
    )  # fmt: skip
    # Labels at the powers of ten only: plotly's in-between "2" and "5" are drawn smaller than
    # the other ticks, too small to read on a projector.
    fig.update_xaxes(
        title_text="tokens n (log scale)", type="log", dtick=1, showgrid=True, gridcolor="#eee"
    )
    fig.update_yaxes(
        title_text="sequential steps (log scale)", type="log", dtick=1, showgrid=True,
        gridcolor="#eee",
    )  # fmt: skip
    return fig


# --------------------------------------------------------------------------------------------
# The same expression through every model


@dataclass
class ModelRun:
    model_type: str
    source: str  # "the app's model", a checkpoint path, or "untrained (random weights)"
    trained: bool
    depth: int | None  # sequential merges measured (None: not run)
    seconds: float | None  # wall time of one forward pass (median of the repeats)
    prediction: int | None
    note: str = ""


def run_model(model: Any, text: str, seed: int = 0, repeats: int = 3, **settings: Any):
    """(measured depth, median seconds, prediction) of one forward pass on ``text``."""
    import torch

    ids, mask, lengths = model.encode_texts([text])
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            logits, out = model.forward_with_details(ids, mask, seed, lengths=lengths, **settings)
            times.append(time.perf_counter() - start)
    times.sort()
    return int(out.depth[0]), times[len(times) // 2], int(logits.argmax(-1)[0])


NOT_RUN = "—"  # a cell of a model that was not run (a table cell never says "None")


def runs_table(runs: list[ModelRun], truth: int | None) -> list[dict[str, Any]]:
    """One row per model: its measured depth, time, prediction, weights and a note; a model
    that was not run shows :data:`NOT_RUN` in its number cells."""
    rows = []
    for r in runs:
        if r.prediction is None:
            pred = NOT_RUN
        elif r.trained:
            pred = f"{r.prediction}" + (
                "" if truth is None else (" ✓" if r.prediction == truth else " ✗")
            )
        else:
            pred = "untrained"
        rows.append(
            {
                "model": MODEL_NAMES[r.model_type],
                "measured depth": NOT_RUN if r.depth is None else r.depth,
                "time (ms)": NOT_RUN if r.seconds is None else round(1000 * r.seconds, 1),
                "prediction": pred,
                "weights": r.source,
                "note": r.note,
            }
        )
    return rows


def runs_figure(runs: list[ModelRun]) -> go.Figure:
    """Two panels per model run: measured depth (trace ``measured depth``) and wall time in ms
    (trace ``time (ms)``); RIR-EBT-GRC orange."""
    from plotly.subplots import make_subplots

    done = [r for r in runs if r.depth is not None]
    names = [MODEL_NAMES[r.model_type] for r in done]
    colors = [CHOSEN if r.model_type == "rir_ebt_grc" else NEUTRAL for r in done]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("sequential merges (measured)", "time of one forward pass (ms)"),
        horizontal_spacing=0.12,
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[r.depth for r in done],
            name="measured depth",
            marker={"color": colors},
            text=[str(r.depth) for r in done],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y} sequential merges<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[1000 * r.seconds for r in done],
            name="time (ms)",
            marker={"color": colors},
            text=[f"{1000 * r.seconds:.0f}" for r in done],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:.1f} ms<extra></extra>",
        ),
        row=1,
        col=2,
    )
    _base_layout(fig, "", 300)
    fig.update_layout(margin={"t": 50})
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    # A quarter of headroom above the tallest bar: its number is written above it, inside the
    # plot (at a projector's text size it ran into the panel's title and was cut).
    for col, values in ((1, [r.depth for r in done]), (2, [1000 * r.seconds for r in done])):
        fig.update_yaxes(range=[0, 1.25 * max(values, default=1)], row=1, col=col)
    return fig
