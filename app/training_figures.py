"""Figures and summaries of the Training page: a run's log in, plotly figures and text out.

Nothing here imports streamlit (the page only wires these to widgets). The inputs are what
``app.jobs.read_log`` parses from ``log.jsonl``: step records (``step``, ``loss``,
``accuracy``, ``lr``, ``epoch``, ``elapsed_s``, ``eta_s``, ``seq_per_s``) and evaluation records
(``step``, ``dev_accuracy``, ``best_dev_accuracy``, ``lr``), and the parse records the worker
writes at each evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.figures import GOLD, PRIMARY, beam_tree_figure

MAX_POINTS = 600  # per curve: a long run's steps are thinned to this many (redrawn every second)
SMOOTHING = 0.1  # weight of the newest step in the exponential moving average
RAW = "rgba(47, 111, 159, 0.25)"  # the raw per-step values, behind their smoothed line
DEV = "#e07b39"
CHANCE = 0.1  # ten classes


def ema(values: list[float | None], alpha: float = SMOOTHING) -> list[float | None]:
    """Exponential moving average (bias-corrected, so the start is not pulled towards 0)."""
    out: list[float | None] = []
    avg, weight = 0.0, 0.0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(out[-1] if out else None)
            continue
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


def thin(rows: list[dict[str, Any]], max_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """Every k-th row (and always the last) so that at most about ``max_points`` remain."""
    if len(rows) <= max_points:
        return rows
    stride = math.ceil(len(rows) / max_points)
    picked = rows[::stride]
    return picked if picked[-1] is rows[-1] else [*picked, rows[-1]]


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 340) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        plot_bgcolor="white",
        # At the figure's bottom edge, under the x-axis title whatever its text size (at
        # y = -0.3 of the plot, teacher mode's larger ticks pushed the title under the legend).
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0, "x": 0},
        uirevision="keep",  # a refresh keeps the user's zoom
    )
    fig.update_xaxes(title_text="step", showgrid=True, gridcolor="#eef2f5", rangemode="tozero")
    fig.update_yaxes(title_text=y_title, showgrid=True, gridcolor="#eef2f5")
    return fig


def _smoothed(steps: list[dict[str, Any]], key: str, name: str) -> tuple[go.Scatter, go.Scatter]:
    """The raw per-step curve (faint) and its moving average, both thinned."""
    smooth = ema([s.get(key) for s in steps])
    rows = thin([{**s, "_smooth": m} for s, m in zip(steps, smooth, strict=True)])
    x = [r["step"] for r in rows]
    raw = go.Scatter(
        x=x, y=[r.get(key) for r in rows], mode="lines", name=f"{name} (each step)",
        line={"color": RAW, "width": 1}, hoverinfo="skip",
    )  # fmt: skip
    avg = go.Scatter(
        x=x, y=[r["_smooth"] for r in rows], mode="lines", name=f"{name} (smoothed)",
        line={"color": PRIMARY, "width": 2},
    )  # fmt: skip
    return raw, avg


def loss_figure(steps: list[dict[str, Any]]) -> go.Figure:
    """Training loss per step (cross-entropy over the 10 values), raw and smoothed."""
    fig = go.Figure(_smoothed(steps, "loss", "loss"))
    fig.add_hline(
        y=math.log(10), line={"dash": "dot", "color": "#9aa8b4", "width": 1},
        annotation_text="chance (ln 10)", annotation_position="top right",
    )  # fmt: skip
    return _layout(fig, "Training loss", "cross-entropy")


def accuracy_figure(steps: list[dict[str, Any]], evals: list[dict[str, Any]]) -> go.Figure:
    """Training accuracy (per batch, smoothed) and dev accuracy at every evaluation."""
    raw, avg = _smoothed(steps, "accuracy", "train")
    fig = go.Figure([raw, avg])
    fig.add_trace(
        go.Scatter(
            x=[e["step"] for e in evals], y=[e.get("dev_accuracy") for e in evals],
            mode="lines+markers", name="dev", line={"color": DEV, "width": 2},
            marker={"size": 7},
        )
    )  # fmt: skip
    fig.add_hline(
        y=CHANCE, line={"dash": "dot", "color": "#9aa8b4", "width": 1},
        annotation_text="chance", annotation_position="top right",
    )  # fmt: skip
    _layout(fig, "Accuracy: training batches and dev set", "accuracy")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


GROUP_COLOURS = {"unchunked": PRIMARY, "chunked": DEV, "long": "#6a4c93"}
GROUP_NAMES = {
    "unchunked": "unchunked (one chunk)",
    "chunked": "chunked (cut into chunks)",
    "long": "longer than training",
}


def composition_figure(evals: list[dict[str, Any]]) -> go.Figure | None:
    """Accuracy per length group at every evaluation: held-out dev (solid) beside the training
    batches of the same group since the previous evaluation (dashed), and the length probe.

    Unchunked inputs are solved by the inner recursion alone; chunked ones also need the chunk
    roots composed. A chunked training line far above its held-out line is memorization, not
    composition. None when the log has no per-group records (runs of older versions).
    """
    rows = [e for e in evals if e.get("dev_groups")]
    if not rows:
        return None
    fig = go.Figure()
    for group, colour in GROUP_COLOURS.items():
        for source, dash, label in (
            ("dev_groups", "solid", "held out"),
            ("train_groups", "dash", "training"),
        ):
            pts = [
                (e["step"], e[source][group]["accuracy"])
                for e in rows
                if e.get(source, {}).get(group, {}).get("n")
            ]
            if not pts:
                continue
            n = rows[-1].get(source, {}).get(group, {}).get("n", 0)
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                    name=f"{GROUP_NAMES[group]}, {label} (n {n:,})",
                    line={"color": colour, "width": 2, "dash": dash},
                    marker={"size": 6 if dash == "solid" else 4},
                )
            )  # fmt: skip
    probes = [e for e in rows if e.get("probe")]
    if probes:
        split = probes[-1]["probe"]["split"]
        fig.add_trace(
            go.Scatter(
                x=[e["step"] for e in probes], y=[e["probe"]["accuracy"] for e in probes],
                mode="markers", name=f"{split} probe (n {probes[-1]['probe']['n']})",
                marker={"color": "#222", "symbol": "diamond", "size": 9},
            )
        )  # fmt: skip
    fig.add_hline(
        y=CHANCE, line={"dash": "dot", "color": "#9aa8b4", "width": 1},
        annotation_text="chance", annotation_position="top right",
    )  # fmt: skip
    _layout(fig, "Chunk composition: accuracy per length group", "accuracy", height=380)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


def lr_figure(steps: list[dict[str, Any]]) -> go.Figure:
    """The learning rate per step (halved by the plateau scheduler when dev stalls)."""
    rows = thin(steps)
    fig = go.Figure(
        go.Scatter(
            x=[r["step"] for r in rows], y=[r.get("lr") for r in rows], mode="lines",
            name="learning rate", line={"color": GOLD, "width": 2, "shape": "hv"},
        )
    )  # fmt: skip
    _layout(fig, "Learning rate", "lr")
    # Two significant digits at most ("1.5e-3"): with one, 1.5e-3 and 2e-3 were both "2e-3".
    fig.update_yaxes(rangemode="tozero", exponentformat="e", tickformat=".2~e")
    return fig


def parse_figure(record: dict[str, Any]) -> go.Figure:
    """The model's best tree for the watched expression at one evaluation; nodes whose span is
    a gold constituent are green."""
    beam = record["final_beams"][0]
    acc = record.get("dev_accuracy")
    when = "before training" if record["step"] == 0 else f"after step {record['step']}"
    dev = f" · dev accuracy {acc:.0%}" if isinstance(acc, (int, float)) else ""
    title = f"{when}{dev} · predicts {record['prediction']} (true value {record['ground_truth']})"
    return beam_tree_figure(
        beam["tree"], record["tokens"], record.get("gold_spans") or [], beam["score"], title
    )


def gold_recall(record: dict[str, Any]) -> float | None:
    """Share of the gold constituents that the model's best tree has as nodes."""
    beam = record["final_beams"][0]
    if "gold_recall" in beam:
        return beam["gold_recall"]
    return None


def eval_table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per split: accuracy and examples."""
    rows = [
        {"split": name, "accuracy": r.get("accuracy"), "examples": r.get("n")}
        for name, r in results.items()
    ]
    return pd.DataFrame(rows, columns=["split", "accuracy", "examples"])


def format_duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# --------------------------------------------------------------------------------------------
# Progress


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1 for the progress bar
    text: str  # "step 120 of 480 · epoch 1.0 of 4 · ETA 1 min 10 s"


def progress(
    settings: dict[str, Any],
    planned_steps: int | None,
    last_step: dict[str, Any] | None,
    elapsed_before: float = 0.0,
) -> Progress:
    """Where a run stands: the larger of the step share and the time share (``max_minutes``),
    and an ETA from the trainer's own measured pace."""
    if last_step is None:
        return Progress(0.0, "preparing: reading the data and building the model…")
    step = int(last_step["step"])
    fraction = step / planned_steps if planned_steps else 0.0
    eta = last_step.get("eta_s")
    max_minutes = settings.get("max_minutes")
    if max_minutes:
        this_session = float(last_step.get("elapsed_s") or 0.0) - elapsed_before
        left = max(max_minutes * 60 - this_session, 0.0)
        fraction = max(fraction, this_session / (max_minutes * 60))
        eta = left if eta is None else min(eta, left)
    parts = [f"step {step:,}" + (f" of {planned_steps:,}" if planned_steps else "")]
    epochs = settings.get("epochs")
    if last_step.get("epoch") is not None:
        parts.append(f"epoch {last_step['epoch']:.2f}" + (f" of {epochs}" if epochs else ""))
    parts.append(f"ETA {format_duration(eta)}")
    if last_step.get("seq_per_s"):
        parts.append(f"{last_step['seq_per_s']:.0f} examples/s")
    return Progress(min(max(fraction, 0.0), 1.0), " · ".join(parts))
