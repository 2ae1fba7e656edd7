"""Teacher mode and lesson links, applied by the router (``app/main.py``) on every run.

- ``?teacher=1`` turns teacher mode on for the session (``?teacher=0`` off; the Guide page has
  a toggle): larger text for a projector, and the advanced controls hidden (:data:`ADVANCED_KEYS`).
  It stays on when the page changes, and the Explorer's own links keep ``teacher=1``.
- ``?lesson=ID`` opens a named lesson of ``app.lessons.lessons()`` on a session's first run:
  the expression, the settings, and the Explorer's level / chunk / step.

Hiding is done with CSS on the widgets' keys (Streamlit marks every keyed widget with the class
``st-key-KEY``), so the pages need not know about teacher mode: a hidden control keeps its
value, and a lesson link still sets it.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from app import state
from app.lessons import LESSON_PARAM, SECTIONS, TEACHER_PARAM, View, lessons

FLAG = state.TEACHER_FLAG  # session_state key: teacher mode on?
LESSON_DONE = "teacher.lesson_checked"  # the session's first run looked at ?lesson=

# Widget keys of the controls a class does not need: the seed (the lesson fixes it), the random
# expression generator, the inactive-beam placeholders, the model picker; the alignment page's
# data seed; the depth lab's slow BT-GRC run; the Training page's run-keeping settings (the
# class trains a preset; the model's own sizes stay, they are what a lesson varies).
ADVANCED_KEYS = (
    "settings.seed",
    "explorer.random_length",
    "explorer.random",
    "explorer.show_invalid",
    "model.choice",
    "alignment.data_seed",
    "depth.bt",
    "training.seed",
    "training.device",
    "training.batch_size",
    "training.eval_every",
    "training.patience",
    "training.max_minutes",
)
# Key prefixes hidden too: the Explorer's download buttons (explorer.dot.*, explorer.graphml.*).
ADVANCED_PREFIXES = (
    "explorer.dot.",
    "explorer.graphml.",
    "explorer.trace_json",
    "explorer.downloads",
    "training.advanced",  # the Training page's run-keeping block, its heading included
)
ROOT_FONT_PX = 21  # Streamlit sizes text in rem: the root font scales all of it (default 16)
# Plotly does not follow the page's CSS: in teacher mode every chart gets these text sizes.
CHART_FONT_PX = 18
CHART_TICK_PX = 16  # beside 21 px text; 14 px ticks could not be read from the back of a room
# A tree's plot area at a 1280 px window, the page's full width: with the sidebar open (as the
# page starts outside teacher mode), and in teacher mode (sidebar folded, no side margins).
# Node labels are fitted to it (figures.TreeView); two trees side by side get half less the axis.
TREE_PLOT_PX = {False: 740, True: 980}
TREE_AXIS_PX = 70  # a tree figure's y axis and margins
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def sidebar_state() -> str:
    """The sidebar's initial state for ``st.set_page_config``: collapsed in teacher mode (the
    router asks before the session is set up, so the address decides on a first visit), where
    its 300 px are better given to the lesson; its arrow opens it."""
    raw = st.query_params.get(TEACHER_PARAM)
    on = raw.strip().lower() in TRUE_WORDS if raw is not None else enabled()
    return "collapsed" if on else "auto"


def enabled() -> bool:
    return bool(st.session_state.get(FLAG, False))


def set_enabled(on: bool) -> None:
    """Turn teacher mode on or off, in the session and in the address bar."""
    st.session_state[FLAG] = on
    if on:
        st.query_params[TEACHER_PARAM] = "1"
    elif TEACHER_PARAM in st.query_params:
        del st.query_params[TEACHER_PARAM]


def css_class(key: str) -> str:
    """The class Streamlit gives the container of the widget with ``key``."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


def css() -> str:
    """The style sheet of teacher mode."""
    hidden = ", ".join(
        [f".{css_class(k)}" for k in ADVANCED_KEYS]
        + [f'[class*="{css_class(p)}"]' for p in ADVANCED_PREFIXES]
    )
    return (
        f"html {{ font-size: {ROOT_FONT_PX}px !important; }}\n"
        f"{hidden} {{ display: none !important; }}\n"
        # The developer menu and the deploy button mean nothing to a class.
        '[data-testid="stMainMenu"], [data-testid="stAppDeployButton"] '
        "{ display: none !important; }\n"
        # Use the projector's whole width, and most of its height: Streamlit's 6rem of blank
        # space above the page (126 px at this root font) shrinks to what the header needs.
        '[data-testid="stMainBlockContainer"] { max-width: 100% !important; '
        "padding-top: 3.5rem !important; }\n"
    )


def projected(fig: Any) -> Any:
    """A copy of the plotly figure ``fig`` with text large enough for a projector (the
    figure itself may be cached, so it is left alone)."""
    import plotly.graph_objects as go

    big = go.Figure(fig)
    big.update_layout(font={"size": CHART_FONT_PX}, title_font_size=CHART_FONT_PX + 1)
    big.update_xaxes(tickfont_size=CHART_TICK_PX)
    big.update_yaxes(tickfont_size=CHART_TICK_PX)
    # Text the builders size themselves: node labels on the trees, legends on the figure.
    big.update_traces(textfont_size=CHART_TICK_PX, selector={"mode": "markers+text"})
    if big.layout.legend.font.size is not None:
        big.layout.legend.font.size = CHART_TICK_PX
    return big


def plotly_chart(fig: Any, *, key: str, container: Any = None, **kwargs: Any) -> Any:
    """``st.plotly_chart`` for every page: in teacher mode the chart's text is enlarged."""
    target = st if container is None else container
    return target.plotly_chart(projected(fig) if enabled() else fig, key=key, **kwargs)


def tree_view(window: tuple[int, int] | None = None, half: bool = False) -> Any:
    """How a tree figure is drawn on this page: its token window and the size its node labels
    will have (``projected`` enlarges them in teacher mode) on a plot of the full or half page
    width, so that the labels chosen are the ones that fit at that size."""
    from app.figures import LABEL_PX, TreeView

    on = enabled()
    plot = TREE_PLOT_PX[on]
    if half:
        plot = (plot + TREE_AXIS_PX) // 2 - TREE_AXIS_PX
    return TreeView(window, CHART_TICK_PX if on else LABEL_PX, plot)


def _read_teacher_param() -> None:
    raw = st.query_params.get(TEACHER_PARAM)
    if raw is None:
        return
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        st.session_state[FLAG] = True
    elif word in FALSE_WORDS:
        st.session_state[FLAG] = False


# A section of the page to bring into view once this run is drawn (a heading's anchor).
SCROLL = "teacher.scroll_to"
SCROLL_SEQ = "teacher.scroll_seq"  # makes each request's script new, so it runs again
HEADER_PX = 70  # Streamlit's top bar covers this much of the page
# The browser side of request_scroll: wait for the run to finish, put the heading at the top (or
# scroll as far as the page goes) and keep it there while charts above it finish drawing (they
# change the page's height) until it has stayed put for settleMs; stop at once when the reader
# scrolls, clicks or types.
_SCROLL_JS = """<script>
(() => {
  const anchor = %(anchor)s, headerPx = %(header)d;
  const settleMs = 2500, afterIdleMs = 15000, hardStopMs = 60000;
  const t0 = performance.now();
  let idleSince = null, stableSince = null, stopped = false;
  const stop = () => { stopped = true; };
  for (const kind of ["wheel", "touchstart", "keydown", "mousedown"]) {
    window.addEventListener(kind, stop, { once: true, passive: true, capture: true });
  }
  const atEnd = () => [document.scrollingElement, document.querySelector('[data-testid="stMain"]')]
    .some((b) => b && b.scrollHeight > b.clientHeight
          && b.scrollTop + b.clientHeight >= b.scrollHeight - 2);
  const tick = () => {
    const now = performance.now();
    if (stopped || now - t0 > hardStopMs || (idleSince && now - idleSince > afterIdleMs)) return;
    const el = document.getElementById(anchor);
    const app = document.querySelector('[data-testid="stApp"]');
    if (el && app && app.dataset.testScriptState === "notRunning") {
      idleSince ??= now;
      el.style.scrollMarginTop = headerPx + "px";
      const top = el.getBoundingClientRect().top;
      if (Math.abs(top - headerPx) <= 4 || (top > headerPx && atEnd())) {
        stableSince ??= now;  // in place, or as far as the page scrolls
        if (now - stableSince > settleMs) return;
      } else {
        el.scrollIntoView({ block: "start" });
        stableSince = null;
      }
    }
    setTimeout(tick, 100);
  };
  tick();
})();
</script><!-- %(seq)d -->"""


def request_scroll(anchor: str | None) -> None:
    """Bring the heading with ``anchor`` into view after this run (see :func:`scroll_if_asked`);
    None asks for nothing."""
    if anchor:
        st.session_state[SCROLL] = anchor


def scroll_if_asked() -> None:
    """Draw the script that scrolls to the requested section, once (call it after the page's
    content: a page, or a fragment whose own rerun asked for it)."""
    import json

    anchor = st.session_state.pop(SCROLL, None)
    if anchor not in SECTIONS:  # only the pages' own headings: never text from a user
        return
    seq = st.session_state[SCROLL_SEQ] = st.session_state.get(SCROLL_SEQ, 0) + 1
    script = _SCROLL_JS % {"anchor": json.dumps(str(anchor)), "header": HEADER_PX, "seq": seq}
    st.html(script, unsafe_allow_javascript=True, width=1)


def apply_view(view: View) -> None:
    """Put the session in the state ``view`` describes: the expression and every setting (the
    model's default for those the view leaves open), and the Explorer at its level / chunk /
    step. The page itself is the caller's business (``st.switch_page``)."""
    cfg = state.current_model().config
    lo_k, hi_k = state.BEAM_RANGE
    lo_w, hi_w = state.WIDTH_RANGE
    values = {
        "settings.expression": view.expression,
        "settings.seed": 0 if view.seed is None else view.seed,
        "settings.beam_size": min(max(view.beam_size or cfg.beam_size, lo_k), hi_k),
        "settings.chunk_width": min(max(view.chunk_width or cfg.chunk_width, lo_w), hi_w),
        "settings.alignment": view.alignment or cfg.alignment.value,
    }
    for key, value in values.items():
        state.set_setting(key, value)
    state.reset_view()  # the Explorer's preset box and view
    ss = st.session_state
    ss["explorer.level"] = view.level or 0
    ss["explorer.chunk"] = view.chunk or 0
    ss["explorer.step"] = view.step or 1
    ss.pop("alignment.level", None)  # the alignment page starts at its first level
    request_scroll(view.section)  # the lesson's subject in view, not the page's top


def _apply_lesson_once() -> None:
    ss = st.session_state
    if ss.get(LESSON_DONE):
        return
    ss[LESSON_DONE] = True
    lesson_id = st.query_params.get(LESSON_PARAM)
    if lesson_id is None:
        return
    view = lessons().get(lesson_id.strip())
    if view is None:
        st.warning(
            f"There is no lesson called {lesson_id!r}. The Guide page lists the lessons: "
            + ", ".join(sorted(lessons()))
            + "."
        )
    else:
        apply_view(view)
    del st.query_params[LESSON_PARAM]


def apply() -> None:
    """Read ``?teacher=`` and (once per session) ``?lesson=``; style the page in teacher mode."""
    _read_teacher_param()
    _apply_lesson_once()
    if enabled():
        st.html(f"<style>\n{css()}</style>")
