"""Guide: a guided tour in eight steps, a gallery of instructive expressions, and lesson links.

Every tour step is a short text beside a live view drawn from a trace of the step's own
expression (with the figure builders of ``app.figures``), and a button that opens the Explorer
in exactly that state. The words and the states are data in ``app/lessons.py``; teacher mode
and the ``?lesson=`` links live in ``app/teacher.py``.
"""

import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import logging
from dataclasses import replace
from typing import Any

import streamlit as st
import torch

from app import figures as F
from app import lessons as L
from app import state, teacher
from app.model_store import source_label
from rir_core.balanced import balanced_tree
from rir_core.pretrained import PRETRAINED_DIR, pretrained_available
from rir_core.trace import gold_recall

state.ensure_router()
log = logging.getLogger(__name__)
ss = st.session_state

DEFAULT_BASE_URL = "http://localhost:8501"  # when the browser's address is unknown (tests)


# --------------------------------------------------------------------------------------------
# Data: traces under a view's settings, and the searches (cached per model)


def view_settings(view: L.View, loaded: state.LoadedModel) -> dict[str, Any]:
    """The settings a view opens with (the model's defaults for those it leaves open)."""
    cfg = loaded.config
    return {
        "seed": 0 if view.seed is None else view.seed,
        "beam_size": view.beam_size or cfg.beam_size,
        "chunk_width": view.chunk_width or cfg.chunk_width,
        "alignment": view.alignment or cfg.alignment.value,
    }


def trace_of(view: L.View, loaded: state.LoadedModel) -> dict[str, Any]:
    """The trace of the view's expression: the same cache entry the Explorer reads when the
    button opens it, so the click costs no model run."""
    s = view_settings(view, loaded)
    return state.get_trace(
        loaded.model_id, view.expression, s["seed"], s["beam_size"], s["chunk_width"],
        s["alignment"],
    )  # fmt: skip


@st.cache_resource(max_entries=4, show_spinner="Searching generated expressions…")
def searched_cases(
    model_id: str, _loaded: state.LoadedModel
) -> tuple[L.Disagreement | None, list[L.Failure]]:
    """An alignment-sensitive expression and failures of the model ``model_id`` (its default
    settings, seed 0), found once per server and model."""
    model = _loaded.model

    def predict(texts, alignment: str) -> list[int]:
        with torch.inference_mode():
            return model.predict(list(texts), seed=0, alignment=alignment)

    disagreement = L.find_disagreement(predict)
    failures = L.find_failures(predict, _loaded.config.alignment.value)
    return disagreement, failures


def shipped(loaded: state.LoadedModel) -> bool:
    """Whether the app runs the shipped model of ``pretrained/``."""
    return loaded.trained and Path(loaded.source).resolve() == PRETRAINED_DIR.resolve()


def model_words(loaded: state.LoadedModel) -> str:
    """Which model the failures are failures of, in one sentence."""
    what = f"{loaded.name}, " + (
        f"trained, from {source_label(loaded.source)}"
        if loaded.trained
        else "untrained (random weights)"
    )
    if shipped(loaded):
        return f"Failures of the shipped model ({what})."
    if not pretrained_available():
        return (
            "There is no shipped model yet (`pretrained/rir_ebt_grc/` is missing), so these "
            f"are failures of the app's current model: {what}."
        )
    return f"Failures of the model in use, not the shipped one: {what}."


# --------------------------------------------------------------------------------------------
# Widgets


def base_url() -> str:
    """The app's address in the browser, without the page."""
    url = getattr(st.context, "url", None) or DEFAULT_BASE_URL
    for path in L.PAGE_PATHS.values():
        if path and url.rstrip("/").endswith("/" + path):
            return url.rstrip("/")[: -len(path) - 1]
    return url.rstrip("/")


GOTO = "guide.goto"  # the page a button asked for (switched to at the top of the next run)


def _open(view: L.View) -> None:
    teacher.apply_view(view)
    ss[GOTO] = view


def open_button(view: L.View, key: str, label: str | None = None) -> None:
    """A button that opens ``view``: its page, expression, settings and Explorer step."""
    label = label or f"Open in the {L.PAGE_TITLES[view.page]}"
    st.button(label, key=key, icon=":material/open_in_new:", on_click=_open, args=(view,))


def follow_button() -> None:
    """Switch to the page a button asked for (a callback cannot switch pages itself)."""
    view = ss.pop(GOTO, None)
    if view is not None:
        st.switch_page(L.PAGE_FILES[view.page], query_params=view.query_params(teacher.enabled()))


def chart(fig, key: str) -> None:
    teacher.plotly_chart(fig, key=key)  # larger figure text in teacher mode


def best_beam(trace: dict[str, Any]) -> dict[str, Any]:
    beams = trace["final_beams"]
    valid = [b for b in beams if b["valid"]] or beams
    return max(valid, key=lambda b: b["weight"])


# --------------------------------------------------------------------------------------------
# The live view of each tour step (a figure or metrics from the step's trace)


def live_tree(trace: dict[str, Any]) -> None:
    b = best_beam(trace)
    title = f"The model's tree (best beam): gold recall {b['gold_recall']:.2f}"
    chart(F.beam_tree_figure(b["tree"], trace["tokens"], trace["gold_spans"], b["score"], title,
                             built=b.get("built")), "guide.live.tree")  # fmt: skip
    a, c = st.columns(2)
    a.metric("Value of the expression", trace["ground_truth"])
    c.metric("The model's answer", trace["prediction"])


def live_depth(trace: dict[str, Any]) -> None:
    d, n = trace["depth"], len(trace["tokens"])
    cols = st.columns(3)
    # Short labels: the live column is narrow, and long ones were cut at a projector's sizes.
    cols[0].metric("One at a time", d["ebt"], help="One merge at a time (EBT-GRC): n − 1.")
    cols[1].metric("Balanced", d["balanced"], help="A fixed balanced tree: ⌈log₂ n⌉.")
    cols[2].metric("RIR", d["performed"], help="RIR, measured on this input.")
    width = trace["settings"]["chunk_width"] or L.PAPER_WIDTH
    chart(F.depth_curves_figure(width, 1000, n), "guide.live.depth")


def live_balanced(trace: dict[str, Any]) -> None:
    tokens, gold = trace["tokens"], trace["gold_spans"]
    tree = balanced_tree(len(tokens))
    recall = gold_recall(tree, gold)
    chart(
        F.beam_tree_figure(tree, tokens, gold, 0.0, f"A balanced tree: gold recall {recall:.2f}"),
        "guide.live.balanced",
    )
    a, c = st.columns(2)
    a.metric("Balanced tree: brackets recovered", f"{recall:.0%}")
    c.metric("The model's best beam", f"{best_beam(trace)['gold_recall']:.0%}")


def inner_steps(trace: dict[str, Any], view: L.View) -> tuple[dict, list[int]] | None:
    levels = trace["levels"]
    level = levels[min(view.level or 0, len(levels) - 1)]
    if not level["chunk_details"]:
        return None
    detail = level["chunk_details"][min(view.chunk or 0, len(level["chunk_details"]) - 1)]
    if not detail["steps"]:
        return None
    return detail["steps"][min(view.step or 1, len(detail["steps"])) - 1], detail["span"]


def live_beams(trace: dict[str, Any], view: L.View) -> None:
    found = inner_steps(trace, view)
    if found is None:
        st.info("This model builds a fixed tree: there is no beam search to show.")
        return
    step, span = found
    chart(F.beam_rows_figure(step, trace["tokens"], span), "guide.live.beams")
    kept = sum(1 for c in step["chosen"] if c["valid"])
    st.caption(f"Merge step {view.step}: {kept} merges kept out of every beam's proposals.")


def live_chunks(trace: dict[str, Any], view: L.View) -> None:
    levels = trace["levels"]
    level = min(view.level or 0, len(levels) - 1)
    chunk = min(view.chunk or 0, len(levels[level]["chunks"]) - 1)
    chart(F.outer_levels_figure(levels, trace["tokens"], level, chunk), "guide.live.chunks")
    sizes = [len(lv["chunks"]) for lv in levels]
    st.caption(
        f"{len(levels)} levels; chunks per level: {', '.join(map(str, sizes))}; "
        f"merge steps per level: {', '.join(str(lv['inner_steps']) for lv in levels)}."
    )


def live_alignment(trace: dict[str, Any]) -> None:
    aligned = [lv for lv in trace["levels"] if lv["alignment"]]
    if not aligned:
        st.info("This input is one chunk: no alignment happens.")
        return
    al = aligned[0]["alignment"]
    k, c = len(al["slots"]), len(al["chunk_probs"])
    a, b = st.columns(2)
    a.metric("Chunks C × beams K", f"{c} × {k}")
    b.metric("Combinations K^C", f"{k**c:,}")
    chart(F.alignment_picks_figure(al), "guide.live.alignment")


def live_bound(trace: dict[str, Any]) -> None:
    chart(F.depth_figure(trace["depth"]), "guide.live.bound")


def live_failure(trace: dict[str, Any], failure: L.Failure | None) -> None:
    if failure is None or failure.expression is None:
        st.success("The search found no wrong answer in the generated expressions.")
        return
    chart(
        F.probability_figure(trace["probabilities"], trace["prediction"], trace["ground_truth"]),
        "guide.live.failure",
    )
    st.caption(
        f"`{failure.expression if len(failure.expression) < 90 else failure.expression[:87] + '…'}`"
        f" ({len(trace['tokens'])} tokens): the value is {trace['ground_truth']}, the model "
        f"says {trace['prediction']}."
    )


# --------------------------------------------------------------------------------------------
# Sections


def tour_step(step: L.TourStep, loaded: state.LoadedModel, failure: L.Failure | None) -> None:
    with st.container(border=True, key=f"guide.step.{step.slug}"):
        st.subheader(f"{step.number}. {step.title}")
        text, live = st.columns([2, 3], gap="large")
        with text:
            st.markdown(step.text)
            if step.slug == "failure" and failure is not None and failure.expression:
                st.caption(model_words(loaded))
            open_button(step.view, f"guide.open.{step.slug}")
            if step.also is not None:
                open_button(step.also, f"guide.also.{step.slug}")
        with live:
            try:
                trace = trace_of(step.view, loaded)
            except Exception as exc:  # a class must not see a traceback; the log keeps it
                log.exception("guide trace failed")
                st.error(f"The model failed on this step's expression ({exc}).")
                return
            if step.slug == "tree":
                live_tree(trace)
            elif step.slug == "depth":
                live_depth(trace)
            elif step.slug == "balanced":
                live_balanced(trace)
            elif step.slug == "beams":
                live_beams(trace, step.view)
            elif step.slug == "chunks":
                live_chunks(trace, step.view)
            elif step.slug == "alignment":
                live_alignment(trace)
            elif step.slug == "bound":
                live_bound(trace)
            elif step.slug == "failure":
                live_failure(trace, failure)


def gallery_row(preset: L.Preset, link: str) -> None:
    title, button = st.columns([5, 1], vertical_alignment="center")
    with title:
        st.markdown(f"**{preset.title}** · {preset.line}")
        st.caption(f"[{_short(link)}]({link})")
    with button:
        open_button(preset.view, f"guide.preset.{preset.slug}", "Open")


def _short(link: str, limit: int = 90) -> str:
    return link if len(link) <= limit else link[: limit - 1] + "…"


def searched_presets(
    disagreement: L.Disagreement | None, failures: list[L.Failure], loaded: state.LoadedModel
) -> list[L.Preset]:
    out = []
    if disagreement is not None:
        p = disagreement.predictions
        out.append(
            L.Preset(
                "alignment-sensitive",
                "Alignment-sensitive",
                f"The value is {disagreement.label}; with seed 0 the alignments predict "
                + ", ".join(f"{a} {p[a]}" for a in L.ALIGNMENTS)
                + f" (the first such case in {disagreement.searched} generated expressions). "
                "Switch *Beam alignment* in the sidebar and watch the answer change.",
                L.View(expression=disagreement.expression, level=0, chunk=0),
            )
        )
    for i, f in enumerate(failures):
        if f.expression is None:
            continue
        out.append(
            L.Preset(
                f"failure-{i}",
                f"Failure, {f.bucket}",
                f"The value is {f.label}, the model says {f.prediction} (wrong on {f.wrong} of "
                f"the first {f.searched} generated expressions of this length).",
                L.View(expression=f.expression, level=0, chunk=0),
            )
        )
    return out


def lesson_links(base: str) -> None:
    on = st.toggle("Links open in teacher mode", value=teacher.enabled(), key="guide.links_teacher")
    rows = ["| lesson | opens | link |", "| --- | --- | --- |"]
    for lesson_id, view in L.lessons().items():
        where = L.PAGE_TITLES[view.page]
        if view.page == "explorer" and view.level is not None:
            where += f", level {view.level}, chunk {view.chunk or 0}, step {view.step or 1}"
        url = L.lesson_url(lesson_id, base, on)
        rows.append(f"| `{lesson_id}` | {where} | [{url}]({url}) |")
    st.markdown("\n".join(rows))
    st.caption(
        "A short link opens its lesson when a new tab loads it. Once open, the address bar "
        "spells out the expression, settings and step: that long link works too."
    )


def render() -> None:
    follow_button()
    loaded = state.current_model()
    st.title("Guide")
    st.caption(
        "A tour of Recursion in Recursion in eight steps, a gallery of instructive "
        "expressions, and links that open the app in a given state."
    )
    st.toggle(
        "Teacher mode",
        value=teacher.enabled(),
        key="guide.teacher",
        on_change=lambda: teacher.set_enabled(bool(ss["guide.teacher"])),
        help="Larger text for a projector and fewer controls. A link with ?teacher=1 turns "
        "it on too.",
    )
    state.model_panel(loaded)

    try:
        disagreement, failures = searched_cases(loaded.model_id, loaded)
    except Exception as exc:  # the tour works without them
        log.exception("guide searches failed")
        st.warning(f"The search for instructive cases failed ({exc}).")
        disagreement, failures = None, []
    first_failure = next((f for f in failures if f.expression), None)

    st.header("Guided tour")
    for step in L.tour():
        if step.slug == "failure" and first_failure is not None:
            step = replace(step, view=L.View(expression=first_failure.expression))
        tour_step(step, loaded, first_failure)

    base = base_url()
    st.header("Presets gallery")
    st.caption("Each opens the Explorer on an expression chosen to show one thing.")
    for preset in L.presets():
        gallery_row(preset, L.lesson_url(preset.slug, base, teacher.enabled()))
    said = False
    for preset in searched_presets(disagreement, failures, loaded):
        if preset.slug.startswith("failure") and not said:
            st.markdown(model_words(loaded))
            said = True
        gallery_row(preset, preset.view.url(base, teacher.enabled()))

    st.header("Lesson links")
    lesson_links(base)


render()
