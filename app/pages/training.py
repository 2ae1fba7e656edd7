"""Training: a placeholder until the training run and its logs ship with the model."""

import streamlit as st

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
