"""Beam alignment: how the K beams of the next outer level are assembled from each chunk's beams.

After a level, every chunk has K beams; the next level needs K sequences ("slots") with one beam
per chunk, out of K^C combinations. This page draws what the alignment chose (one picture per
level), compares the four strategies on the same input and over many seeds, lists what looks
wrong, and measures the strategies' accuracy on a generated batch. Data and figures come from
``app.alignment_lab``; the expression and settings are shared with the Explorer.
"""

import sys
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import logging
import secrets
from urllib.parse import urlencode

import streamlit as st

from app import alignment_lab as A
from app import figures as F
from app import state, teacher

state.ensure_router()

log = logging.getLogger(__name__)
ss = st.session_state
KEY = "alignment."  # prefix of this page's widget keys
SEED_COUNTS = (5, 100)  # the "over many seeds" slider
DATASET_SIZES = (10, 1000)
DATASET_LENGTHS = (5, 1000)
FAILURES_SHOWN = 200


def pressed(container, label: str, key: str, **kwargs) -> bool:
    """A button whose press survives a rerun before this page's code runs (the router's, see
    ``state.ensure_router``): the click sets a flag in a callback, the page reads it once."""
    container.button(label, key=key, on_click=ss.__setitem__, args=(key + ".flag", True), **kwargs)
    return bool(ss.pop(key + ".flag", False))


def _resample() -> None:
    state.set_setting("settings.seed", secrets.randbelow(10_000))


def explorer_link(text: str, settings: state.Settings, alignment: str) -> str:
    """A relative link that opens ``text`` in the Explorer with these settings."""
    query = {
        "expr": text,
        "seed": settings.seed,
        "k": settings.beam_size,
        "w": settings.chunk_width,
        "align": alignment,
    }
    if state.chosen_model_key():  # the failure is the session's model's: open it with that
        query[state.MODEL_PARAM] = state.chosen_model_key()
    if ss.get(state.TEACHER_FLAG):
        query["teacher"] = "1"
    return "./?" + urlencode(query)


@st.cache_data(max_entries=32, show_spinner=False)
def seed_predictions(
    model_id: str, text: str, seeds: tuple[int, ...], k: int, w: int, alignment: str
) -> list[int]:
    loaded = state.current_model()
    return A.predictions_over_seeds(
        loaded.model, text, seeds, beam_size=k, chunk_width=w, alignment=alignment
    )


# --------------------------------------------------------------------------------------------
# Sections


def picture(trace: dict, settings: state.Settings) -> None:
    st.subheader("What the alignment chose")
    levels = A.aligned_levels(trace)
    level = levels[0]
    if len(levels) > 1:
        level = st.selectbox(
            "After level",
            levels,
            key=KEY + "level",
            format_func=lambda ell: f"level {ell} ({len(trace['levels'][ell]['chunks'])} chunks)",
        )
    al = trace["levels"][level]["alignment"]
    chunks, k = len(al["chunk_scores"]), len(al["slots"])
    a, b, c, d = st.columns(4)
    a.metric("Chunks C", chunks)
    combos = k**chunks
    b.metric("Combinations K^C", f"{combos:,}" if combos < 10**9 else f"{float(combos):.2e}")
    c.metric(
        "Best combination kept",
        "yes" if al["best_kept"] else "no",
        help="Whether some slot holds the best beam of every chunk.",
    )
    d.metric(
        "Score mass kept",
        A.percent(A.mass_kept(al)),
        help="The probability mass of all K^C combinations that the K slots hold "
        "(duplicates counted once).",
    )
    data = A.picture_data(trace, level)
    columns = None
    if chunks > A.COLUMNS_SHOWN:
        columns = st.slider(
            "Chunks to draw",
            0,
            chunks,
            (0, A.COLUMNS_SHOWN),
            key=KEY + f"columns.{level}",
            help=f"{chunks} columns do not fit side by side: pick a window of chunks.",
        )
    teacher.plotly_chart(A.alignment_figure(data, settings.alignment, columns), key=KEY + "picture")
    st.caption(
        "Top rows: each chunk's K beams (columns are chunks), coloured by their probability "
        "within the chunk; the ringed one is the chunk's best, × marks a beam the chunk does not "
        "have. Bottom rows: the K sequences of the next level (slots), with the sum of the "
        "picked scores. A line goes from a beam to every slot that took it; slot 0 (thick) "
        "always takes the best beams. Dotted lines: a slot identical to an earlier one. "
        "Hover a beam for the subtree it encodes."
    )


def comparison(trace_of: dict, settings: state.Settings) -> None:
    st.subheader("The four strategies on this input")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.caption(
        f"Same expression, K = {settings.beam_size}, W = {settings.chunk_width}, seed "
        f"{settings.seed} (change it in the sidebar, or draw a new one). 'sample' and 'random' "
        "draw the slots with this seed; 'rank' and 'kbest' do not draw at all."
    )
    right.button("Resample (new seed)", key=KEY + "resample", on_click=_resample, width="stretch")
    summaries = [A.summarize(trace_of[s]) for s in A.STRATEGIES]
    cols = st.columns(len(summaries))
    for col, sm in zip(cols, summaries, strict=True):
        mark = " ◀ sidebar" if sm.strategy == settings.alignment else ""
        col.metric(
            f"{sm.strategy}{mark}",
            sm.prediction,
            help="The prediction with this strategy.",
            border=sm.strategy == settings.alignment,
        )
        verdict = "" if sm.correct is None else ("correct" if sm.correct else "wrong")
        col.caption(
            f"{verdict} · p = {sm.probability:.3f}  \nbest combination "
            f"{'kept' if sm.best_survived else 'lost'} · mass kept {A.percent(sm.worst_mass)}"
        )
    st.dataframe(A.comparison_table(summaries, settings.alignment), hide_index=True)
    teacher.plotly_chart(A.weights_figure(summaries, settings.alignment), key=KEY + "weights")
    st.caption(
        "'mass kept (worst level)': of all K^C ways to combine the chunks' beams, the share of "
        "probability the K slots hold, at the level where it is smallest. 'best combination "
        "survived': some slot held every chunk's best beam at every level."
    )


def over_seeds(loaded: state.LoadedModel, text: str, settings: state.Settings, truth) -> None:
    st.subheader("Over many seeds")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    count = left.slider("Seeds", *SEED_COUNTS, value=20, key=KEY + "seeds")
    seeds = tuple(range(settings.seed, settings.seed + count))
    args = (loaded.model_id, text, seeds, settings.beam_size, settings.chunk_width)
    ran = pressed(right, "Run over the seeds", KEY + "run_seeds", width="stretch")
    if not ran and ss.get(KEY + "seeds.key") != args:
        st.caption(
            f"Runs the model {count} times per strategy (seeds {seeds[0]}-{seeds[-1]}) and "
            "counts the predictions: 'sample' and 'random' may change their answer with the "
            "seed; 'rank' and 'kbest' cannot."
        )
        return
    results = {}
    bar = st.progress(0.0, text="Running the seeds…") if ran else None
    for i, strategy in enumerate(A.STRATEGIES):
        results[strategy] = seed_predictions(*args, strategy)
        if bar is not None:
            bar.progress((i + 1) / len(A.STRATEGIES), text=f"{strategy} done")
    if bar is not None:
        bar.empty()
    ss[KEY + "seeds.key"] = args
    teacher.plotly_chart(A.seed_distribution_figure(results, truth), key=KEY + "seed_chart")
    st.dataframe(
        [
            {
                "strategy": s,
                "distinct predictions": len(set(p)),
                "most common": max(range(10), key=p.count),
                "correct seeds": None if truth is None else sum(x == truth for x in p),
                "of": len(p),
            }
            for s, p in results.items()
        ],
        hide_index=True,
    )


def diagnostics(trace: dict, settings: state.Settings) -> None:
    st.subheader(f"Diagnostics ({settings.alignment})")
    st.caption("What may have gone wrong in this run, level by level. Empty means: nothing found.")
    found = A.diagnostics(trace)
    titles = {
        "lost": "Levels where the best combination was lost",
        "duplicates": "Duplicate slots (a beam spent twice)",
        "negligible": f"Beams with negligible weight (p < {A.NEGLIGIBLE:g})",
        "gold": "Chunks whose best beam disagrees with the gold structure",
    }
    for key, title in titles.items():
        table = found[key]
        with st.expander(f"{title}: {len(table)}", expanded=False):
            if table.empty:
                st.caption("None.")
            else:
                st.dataframe(table, hide_index=True)
    st.caption(
        "A chunk disagrees with the gold structure when its best beam merges tokens across the "
        "brackets of an operator that lies wholly inside the chunk (operators cut by a chunk "
        "boundary do not count: no beam can keep them whole)."
    )


def dataset_mode(loaded: state.LoadedModel, settings: state.Settings) -> None:
    from rir_core.generate import Recipe, generate

    st.subheader("Dataset mode: the strategies on a generated batch")
    st.caption(
        "Generates expressions in a length window and measures every strategy's accuracy on "
        f"them with K = {settings.beam_size}, W = {settings.chunk_width}, seed {settings.seed}."
    )
    a, b, c = st.columns([3, 1, 1], vertical_alignment="bottom")
    lo, hi = a.slider("Length window (tokens)", *DATASET_LENGTHS, (20, 200), key=KEY + "window")
    size = b.number_input("Expressions", *DATASET_SIZES, value=60, step=10, key=KEY + "size")
    data_seed = c.number_input("Data seed", 0, 10**6, value=0, key=KEY + "data_seed")
    params = (
        loaded.model_id,
        lo,
        max(hi, lo + 1),
        int(size),
        int(data_seed),
        settings.seed,
        settings.beam_size,
        settings.chunk_width,
    )
    if pressed(st, "Run the batch", KEY + "run_dataset", type="primary"):
        try:
            examples = generate(Recipe(params[1], params[2]), params[3], seed=params[4])
        except (ValueError, RuntimeError) as exc:
            st.error(f"Cannot generate this batch: {exc}")
            return
        bar = st.progress(0.0, text="Running…")
        run = None
        for done, total, result in A.run_dataset(
            loaded.model,
            examples,
            A.STRATEGIES,
            seed=settings.seed,
            beam_size=settings.beam_size,
            chunk_width=settings.chunk_width,
        ):
            bar.progress(done / total, text=f"{done} of {total} predictions")
            run = result or run
        bar.empty()
        ss[KEY + "dataset"] = (params, run)
    stored = ss.get(KEY + "dataset")
    if stored is None:
        return
    params_run, run = stored
    if params_run != params:
        st.caption("The results below are for other settings: run the batch again to update.")
    bucket = max(10, round((params_run[2] - params_run[1]) / 5, -1) or 10)
    table = run.accuracy_table(int(bucket))
    left, right = st.columns([2, 3])
    with left:
        st.dataframe(table, hide_index=True)
        st.caption(
            f"Accuracy (%) per length bucket; {len(run.texts)} expressions, "
            f"{run.seconds:.1f} s for all four strategies."
        )
    with right:
        teacher.plotly_chart(A.accuracy_figure(table, A.STRATEGIES), key=KEY + "accuracy")
    failing = run.failures()
    st.markdown(f"**Expressions some strategy gets wrong: {len(failing)}**")
    if not failing:
        return
    rows = []
    for i in failing[:FAILURES_SHOWN]:
        wrong = [s for s in A.STRATEGIES if run.predictions[s][i] != run.labels[i]]
        rows.append(
            {
                "tokens": run.lengths[i],
                "truth": run.labels[i],
                **{s: run.predictions[s][i] for s in A.STRATEGIES},
                "open": explorer_link(run.texts[i], settings, wrong[0]),
                "expression": run.texts[i],
            }
        )
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "open": st.column_config.LinkColumn(
                "open", display_text="Explorer ↗", help="Opens it in the Explorer (new tab)."
            )
        },
    )
    pick, open_col = st.columns([4, 1], vertical_alignment="bottom")
    choice = pick.selectbox(
        "Open a failing expression here",
        range(len(rows)),
        format_func=lambda r: (
            f"{rows[r]['tokens']} tokens, truth {rows[r]['truth']}: {rows[r]['expression'][:80]}"
        ),
        key=KEY + "failing",
    )
    if pressed(open_col, "Open in the Explorer", KEY + "open_failing", width="stretch"):
        row = rows[choice]
        wrong = [s for s in A.STRATEGIES if row[s] != row["truth"]]
        state.set_setting("settings.expression", row["expression"])
        state.set_setting("settings.alignment", wrong[0])
        state.reset_view()
        st.switch_page("pages/explorer.py")


# --------------------------------------------------------------------------------------------


def render() -> None:
    loaded = state.current_model()
    settings = state.sidebar_settings()
    st.title("Beam alignment")
    st.caption(
        "When the input is chunked, each chunk returns K beams. Alignment decides which beam of "
        "each chunk goes into each of the K sequences (slots) of the next level: slot 0 takes "
        "the best beam everywhere; 'sample' draws the others from each chunk's beam "
        "probabilities, 'rank' pairs beams by rank, 'random' draws uniformly, 'kbest' takes the "
        "K best combinations exactly."
    )
    state.expression_box()
    parsed = state.parse_expression(settings.expression)
    if parsed.error:
        st.error(F.md_escape(parsed.error))  # it quotes what was typed: shown as typed
        if parsed.position is not None:
            line, caret = F.caret_lines(parsed.text, parsed.position)
            st.code(f"{line}\n{caret}", language=None)
        return
    if loaded.config.model_type != "rir_ebt_grc":
        st.info(
            f"The model in use ({loaded.name}) does not cut its input into chunks, so there is "
            "no alignment to show. Pick an RIR-EBT-GRC model in the sidebar."
        )
        return
    try:
        trace_of = {
            s: state.get_trace(
                loaded.model_id,
                parsed.canonical,
                settings.seed,
                settings.beam_size,
                settings.chunk_width,
                s,
            )
            for s in A.STRATEGIES
        }
    except Exception as exc:  # no traceback in the UI; the server log keeps it
        log.exception("trace failed")
        st.error(F.md_escape(f"The model failed on this input ({type(exc).__name__}: {exc})."))
        return
    trace = trace_of[settings.alignment]
    if A.aligned_levels(trace):
        picture(trace, settings)
        comparison(trace_of, settings)
        over_seeds(loaded, parsed.canonical, settings, trace["ground_truth"])
        diagnostics(trace, settings)
    else:
        st.info(
            f"This input has {len(trace['tokens'])} tokens, fewer than 1.5·W = "
            f"{1.5 * settings.chunk_width:g}, so it is one chunk and no alignment happens. "
            "Lower the chunk width W in the sidebar or pick a longer expression."
        )
    dataset_mode(loaded, settings)
    state.model_panel(loaded)


render()
state.sync_query_params()
