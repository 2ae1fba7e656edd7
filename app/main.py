"""RIR Explorer: the Streamlit entry point (`streamlit run app/main.py` from the repo root).

Only a router: it sets the page up, restores the shared settings (from the URL on a session's
first run), draws the model picker that every page shares and hands over to the chosen page in
``app/pages/``.
"""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` puts app/ on sys.path, not the repo root; add the root so that
# `import rir_core` and `import app` work however the app is started.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app import housekeeping, state, teacher  # noqa: E402  (needs the path above)

housekeeping.start()  # once per server: frees memory when the last tab has gone

st.set_page_config(
    page_title="RIR Explorer",
    page_icon="🌳",
    layout="wide",
    initial_sidebar_state=teacher.sidebar_state(),  # collapsed in teacher mode
)

state.init_session()
teacher.apply()  # ?teacher=1 (projector mode) and ?lesson=ID links
state.model_picker()  # in the sidebar of every page: which model the pages run
state.show_link_notice()  # a link's unknown model or bad K, W... said once

PAGES = [
    st.Page("pages/explorer.py", title="Explorer", icon=":material/account_tree:", default=True),
    st.Page(
        "pages/alignment.py",
        title="Beam alignment",
        icon=":material/call_split:",
        url_path="alignment",
    ),
    st.Page("pages/depth.py", title="Depth bounds", icon=":material/straighten:", url_path="depth"),
    st.Page(
        "pages/training.py", title="Training", icon=":material/monitoring:", url_path="training"
    ),
    st.Page("pages/guide.py", title="Guide", icon=":material/menu_book:", url_path="guide"),
]

st.navigation(PAGES).run()
teacher.scroll_if_asked()  # a lesson's section in view (app/teacher.py)
