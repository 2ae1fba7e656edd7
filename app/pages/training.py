"""Training: a placeholder until the training run and its logs ship with the model."""

import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import streamlit as st

from app import state

state.ensure_router()

st.title("Training")
st.info(
    "Coming with the shipped model: the learning curves of the training run that produced it "
    "(loss and dev accuracy per step), its recipe (data, optimizer, seeds) and its accuracy on "
    "every test split, read from the checkpoint's metadata."
)
st.markdown(
    "Until then, train a model yourself with `python -m rir_core.train` "
    "(`--preset classroom` learns something visible in a few minutes on a laptop)."
)
