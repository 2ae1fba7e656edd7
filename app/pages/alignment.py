"""Beam alignment: how the K beams of the next outer level are assembled from each chunk's beams.

After a level, every chunk has K beams; the next level needs K sequences with one beam per
chunk, out of K^C combinations. This page shows, per level, each chunk's beam probabilities and
the picks of every slot, for the alignment chosen in the sidebar.
"""

import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import logging

import streamlit as st

from app import figures as F
from app import state

state.ensure_router()

log = logging.getLogger(__name__)

loaded = state.current_model()
settings = state.sidebar_settings()

st.title("Beam alignment")
st.caption(
    "When the input is chunked, each chunk returns K beams. Alignment decides which beam of "
    "each chunk goes into each of the K sequences (slots) of the next level: slot 0 takes the "
    "best beam everywhere; 'sample' draws the others from each chunk's beam probabilities, "
    "'rank' pairs beams by rank, 'random' draws uniformly, 'kbest' takes the K best "
    "combinations exactly."
)
state.expression_box()
parsed = state.parse_expression(settings.expression)


def show() -> None:
    if parsed.error:
        st.error(parsed.error)
        if parsed.position is not None:
            line, caret = F.caret_lines(parsed.text, parsed.position)
            st.code(f"{line}\n{caret}", language=None)
        return
    try:
        trace = state.trace_for(loaded, parsed.canonical, settings)
    except Exception as exc:  # no traceback in the UI; the server log keeps it
        log.exception("trace failed")
        st.error(f"The model failed on this input ({type(exc).__name__}: {exc}).")
        return
    aligned = [lv for lv in trace["levels"] if lv["alignment"]]
    if not aligned:
        st.info(
            f"This input has {len(trace['tokens'])} tokens, fewer than 1.5·W = "
            f"{1.5 * settings.chunk_width:g}, so it is one chunk and no alignment happens. "
            "Lower the chunk width W in the sidebar or pick a longer expression."
        )
        return
    options = [lv["level"] for lv in aligned]
    level = st.selectbox(
        "After level",
        options,
        key="alignment.level",
        format_func=lambda ell: f"level {ell} ({len(trace['levels'][ell]['chunks'])} chunks)",
    )
    al = trace["levels"][level]["alignment"]
    chunks, k = len(al["chunk_probs"]), len(al["slots"])
    a, b, c = st.columns(3)
    a.metric("Chunks C", chunks)
    combos = k**chunks
    b.metric("Combinations K^C", f"{combos:,}" if combos < 10**9 else f"{float(combos):.2e}")
    c.metric(
        "Best combination kept",
        "yes" if al["best_kept"] else "no",
        help="Whether some slot holds the best beam of every chunk.",
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(F.alignment_probs_figure(al), key="alignment.probs")
        st.caption("Row c: softmax of chunk c's beam scores, what 'sample' draws from.")
    with right:
        st.plotly_chart(F.alignment_picks_figure(al), key="alignment.picks")
        st.caption(
            "Row s: the beam index taken from every chunk by slot s (its score in brackets)."
        )
    st.markdown(
        f"Alignment used: **{trace['settings']['alignment']}** (seed {trace['settings']['seed']}). "
        "Change it in the sidebar to compare."
    )
    state.model_panel(loaded)


show()
state.sync_query_params()
