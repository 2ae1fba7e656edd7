"""Depth bounds: how many merges must run one after another, as a function of input length.

The lesson: a left-to-right beam search (EBT/BT-GRC) needs n - 1 sequential merges; Recursion in
Recursion cuts the input into chunks that are reduced in parallel, so it needs about
W * log_W(n); a balanced tree needs only ceil(log2 n) but cannot follow the structure. Formulas,
figures and the model runs come from ``app.depth_lab``; the expression is the Explorer's.
"""

import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import logging

import streamlit as st
import torch

from app import depth_lab as D
from app import state, teacher
from app.figures import md_escape
from app.model_store import source_label
from rir_core.config import ModelConfig
from rir_core.pretrained import PRETRAINED_DIR

state.ensure_router()

log = logging.getLogger(__name__)
ss = st.session_state
KEY = "depth."
# The n slider: 1-2-3-5-7 steps from 2 to 10,000 tokens.
N_CHOICES = sorted(
    {m * 10**e for e in range(5) for m in (1, 1.5, 2, 3, 5, 7) if 2 <= m * 10**e <= D.N_MAX}
)
N_CHOICES = [int(n) for n in N_CHOICES]
TABLE_NS = (10, 30, 100, 300, 1000, 3000, 10000)


@st.cache_resource(show_spinner="Loading the baselines…")
def baseline_model(model_type: str, hidden_size: int) -> tuple[torch.nn.Module, str, bool]:
    """(model, where its weights come from, trained?) for one model type.

    A trained checkpoint in ``pretrained/<model_type>/`` if there is one, else a randomly
    initialised model of the paper's configuration for that type at the app model's width.
    """
    from rir_core.checkpoint import load_checkpoint
    from rir_core.model import build_model

    path = PRETRAINED_DIR.parent / model_type
    try:
        model, info = load_checkpoint(path)
        return model.eval(), source_label(str(info.path)), True
    except (FileNotFoundError, ValueError):
        pass
    cfg = ModelConfig.for_model(
        model_type,
        hidden_size=hidden_size,
        scorer_slice=min(hidden_size, 32),
        scorer_hidden=64,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(state.RANDOM_SEED)
        model = build_model(cfg).eval()
    return model, "untrained (random weights)", False


@st.cache_data(max_entries=64, show_spinner=False)
def timed_run(model_key: str, _model, text: str, seed: int, overrides: tuple) -> tuple:
    """``D.run_model`` once per (model, expression, seed, settings): moving a slider of this
    page reruns it, and the models need not run again for that (the time shown is the one
    measured on the first run)."""
    return D.run_model(_model, text, seed, **dict(overrides))


def _measured(loaded, parsed, settings):
    """(n, measured depth) of the current expression with the model in use, or None."""
    if not parsed.canonical:
        return None
    try:
        trace = state.trace_for(loaded, parsed.canonical, settings)
    except Exception:  # the Explorer shows the error; the chart simply has no star
        log.exception("trace failed")
        return None
    return len(trace["tokens"]), int(trace["depth"]["performed"]), trace


def curves(width: int, measured) -> None:
    st.subheader("Sequential depth against length")
    chart, text = st.columns([2, 1])
    with text:
        st.markdown(
            """
**How to read it.** Both axes are logarithmic, so a straight line is a power law.

- **Grey, n − 1**: EBT/BT-GRC merge one pair per step over the whole input: 1,000 tokens,
  999 steps one after another.
- **Orange, RIR exact**: cut the nodes into chunks of W (when there are at least 1.5·W of
  them), reduce every chunk *at the same time*, repeat on the chunk roots. A level costs only
  its widest chunk.
- **Blue, the paper's bound W·log_W(n)**: about log_W(n) levels of at most W merges.
- **Green, ⌈log₂ n⌉**: a balanced tree is shallowest, but it pairs neighbours blindly.

The **star** is the expression from the Explorer, measured by the model.
"""
        )
    with chart:
        n_pick = st.select_slider(
            "Read the values at n (tokens)", N_CHOICES, value=1000, key=KEY + "n"
        )
        mark = (measured[0], measured[1]) if measured else None
        teacher.plotly_chart(D.depth_curves_figure(width, n_pick, mark), key=KEY + "curves")
    ns = sorted(set(TABLE_NS) | {n_pick} | ({measured[0]} if measured else set()))
    rows = D.depth_table(ns, width)
    for row in rows:
        marks = []
        if row["tokens n"] == n_pick:
            marks.append("slider")
        if measured and row["tokens n"] == measured[0]:
            marks.append(f"this input (measured {measured[1]})")
        row["note"] = ", ".join(marks)
    # Narrow number columns leave the note its text: at teacher mode's sizes the table was
    # wider than the page and the note was cut ("this expres").
    narrow = st.column_config.NumberColumn(width="small")
    st.dataframe(
        rows, hide_index=True,
        column_config={"tokens n": narrow, "levels": narrow,
                       "note": st.column_config.TextColumn(width="large")},
    )  # fmt: skip
    st.caption(
        "'chunks per level': how many chunks each outer level has (the last level is always one "
        "chunk). RIR exact can sit slightly above the bound: the 1.5·W rule lets a last chunk "
        "grow to almost 1.5·W nodes rather than open a level for a few nodes."
    )


def same_expression(loaded, parsed, settings, measured) -> None:
    st.subheader("The same expression through every model")
    if not measured:
        st.info("Type a valid expression (here or in the Explorer) to compare the models on it.")
        return
    n, _, trace = measured
    text, truth = parsed.canonical, trace["ground_truth"]
    left, right = st.columns([2, 1])
    with right:
        st.markdown(
            """
**What to look for.** *Measured depth* counts the merge steps that ran one after another for
this input; *time* is one forward pass here, on the CPU. RIR-EBT-GRC's depth grows like
W·log_W(n), the beam-search baselines' like n. BT-GRC also composes *every* pair at every step,
so its time grows like n².
"""
        )
    include_bt = n <= D.BT_GRC_AUTO_TOKENS or left.checkbox(
        f"Also run BT-GRC on these {n} tokens (slow: it composes every pair at every step)",
        key=KEY + "bt",
    )
    runs: list[D.ModelRun] = []
    hidden = loaded.config.hidden_size
    for model_type in D.MODEL_TYPES:
        if model_type == loaded.config.model_type:
            model, source, trained = (
                loaded.model,
                f"the app's model ({source_label(loaded.source)})",
                (loaded.trained),
            )
        else:
            model, source, trained = baseline_model(model_type, hidden)
        if model_type == "bt_grc" and not include_bt:
            runs.append(
                D.ModelRun(model_type, source, trained, None, None, None, "not run (tick the box)")
            )
            continue
        overrides = {}
        if model_type == loaded.config.model_type:
            overrides = dict(beam_size=settings.beam_size, chunk_width=settings.chunk_width)
        elif model_type == "rir_ebt_grc":
            overrides = dict(chunk_width=settings.chunk_width)
        key = loaded.model_id if model is loaded.model else f"{model_type}:{hidden}:{source}"
        depth, seconds, pred = timed_run(
            key, model, text, settings.seed, tuple(sorted(overrides.items()))
        )
        cfg = model.config
        note = (
            f"K = {overrides.get('beam_size', cfg.beam_size)}"
            + (
                f", W = {overrides.get('chunk_width', cfg.chunk_width)}"
                if model_type == "rir_ebt_grc"
                else ""
            )
            if model_type != "bbt_grc"
            else "no beams"
        )
        runs.append(D.ModelRun(model_type, source, trained, depth, seconds, pred, note))
    with left:
        teacher.plotly_chart(D.runs_figure(runs), key=KEY + "runs")
    st.dataframe(D.runs_table(runs, truth), hide_index=True)
    untrained = [D.MODEL_NAMES[r.model_type] for r in runs if not r.trained]
    if untrained:
        st.caption(
            f"Untrained (random weights): {', '.join(untrained)}, so their predictions mean "
            "nothing and are not shown; depth and time do not depend on the weights. Put a "
            "trained checkpoint in pretrained/<model type>/ (e.g. pretrained/ebt_grc/) to see "
            "its prediction."
        )


def render() -> None:
    loaded = state.current_model()
    settings = state.sidebar_settings()
    st.title("Depth bounds")
    st.caption(
        "Recursion in Recursion bounds the sequential depth: chunks of one level run in "
        "parallel, so each level costs only its widest chunk, and there are about log_W(n) "
        "levels."
    )
    state.expression_box()
    parsed = state.parse_expression(settings.expression)
    if parsed.error:
        st.warning(
            md_escape(
                f"The current expression does not parse ({parsed.error}), so it is not marked."
            )
        )
    width = st.slider(
        "Chunk width W for the curves",
        *state.WIDTH_RANGE,
        value=settings.chunk_width,
        key=KEY + "w",
        help="Starts at the sidebar's W (the one the model runs with); the star is always the "
        "model's run with the sidebar's W.",
    )
    measured = _measured(loaded, parsed, settings)
    if measured and loaded.config.model_type != "rir_ebt_grc":
        st.caption(f"The star is measured with {loaded.name}, which does not chunk.")
    curves(width, measured)
    same_expression(loaded, parsed, settings, measured)
    state.model_panel(loaded)


render()
state.sync_query_params()
