"""Depth bounds: how many merges must run one after another, as a function of input length."""

import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import streamlit as st

from app import figures as F
from app import state
from rir_core.balanced import balanced_depth
from rir_core.outer import depth_performed, rir_bound, schedule

state.ensure_router()

settings = state.sidebar_settings()
width = settings.chunk_width

st.title("Depth bounds")
st.caption(
    "Recursion in Recursion bounds the sequential depth: chunks of one level run in parallel, so "
    "each level costs only its widest chunk, and there are about log_W(n) levels."
)
parsed = state.parse_expression(settings.expression)
mark = len(parsed.canonical.split()) if parsed.canonical else None
st.plotly_chart(F.depth_curves_figure(width, 2000, mark), key="depth.curves")
st.caption(
    "Orange: the merges RIR actually runs with chunk width W (from the chunk schedule); blue: "
    "the paper's bound; grey: a left-to-right beam search over the whole input; green: a "
    "balanced tree, fast but blind to the structure. The dotted line is the current expression."
)
rows = []
for n in (100, 300, 600, 1000, 2000) + ((mark,) if mark else ()):
    rows.append(
        {
            "tokens n": n,
            "chunk sizes per level": " | ".join(
                f"{len(sizes)}×≤{max(sizes)}" for sizes in schedule(n, width)
            ),
            "RIR depth": depth_performed(n, width),
            "RIR bound": round(rir_bound(n, width), 1),
            "EBT/BT n−1": n - 1,
            "balanced": balanced_depth(n),
        }
    )
st.dataframe(rows, hide_index=True)
st.caption("The last row (if any) is the expression on the Explorer page.")
