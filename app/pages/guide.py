"""Guide: a placeholder for the classroom walkthrough."""

import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import streamlit as st

from app import state

state.ensure_router()

st.title("Guide")
st.info(
    "Coming: a short walkthrough for a class: what ListOps is, what the two recursions do, "
    "and which presets and buttons of the Explorer show each idea."
)
st.markdown(
    """
In the meantime, a five-minute tour of the **Explorer**:

1. Pick the preset *Shallow* and compare the **Gold tree** with the **Final beams**: the model
   has to discover the nesting by itself.
2. Pick *Long: ~100 tokens, chunked*: the **Outer recursion** figure now has two levels. Step
   through them with *Next level*.
3. In **Inner recursion**, press *Next step* and watch one pair per beam merge into a parent.
4. Change the beam size or the alignment in the sidebar, then copy the page's address: the link
   reproduces what you see.
"""
)
