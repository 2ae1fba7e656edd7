"""RIR Explorer: the Streamlit entry point (`streamlit run app/main.py` from the repo root)."""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` puts app/ on sys.path, not the repo root; add the root so that
# `import rir_core` works however the app is started.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_EXPRESSION = "[MAX 2 9 [MIN 4 7 ] 0 ]"

st.set_page_config(page_title="RIR Explorer", page_icon="🌳", layout="wide")

st.title("RIR Explorer")
st.caption("Watch Recursion in Recursion (RIR-EBT-GRC) parse and solve ListOps expressions.")

expression = st.text_input("ListOps expression", value=DEFAULT_EXPRESSION)
