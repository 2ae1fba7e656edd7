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

from app import alignment_compare as C
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


def choose_level(trace: dict) -> int:
    """The aligned level the page shows (a selectbox when there are several)."""
    levels = A.aligned_levels(trace)
    if len(levels) == 1:
        return levels[0]
    return st.selectbox(
        "After level",
        levels,
        key=KEY + "level",
        format_func=lambda ell: f"level {ell} ({len(trace['levels'][ell]['chunks'])} chunks)",
    )


def level_summary(trace: dict, level: int) -> None:
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


def picture(trace: dict, settings: state.Settings, level: int) -> None:
    st.subheader(f"What {settings.alignment} chose, beam by beam")
    chunks = len(trace["levels"][level]["alignment"]["chunk_scores"])
    data = A.picture_data(trace, level)
    colour = st.radio(
        "Colour the chunk beams by",
        list(A.COLOUR_CAPTIONS),
        format_func={"rank": "rank in the chunk", "gap": "log p − log p(best)", "p": "p"}.get,
        horizontal=True,
        key=KEY + "colour",
    )
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
    teacher.plotly_chart(
        A.alignment_figure(data, settings.alignment, columns, colour), key=KEY + "picture"
    )
    st.caption(
        f"Top rows: each chunk's K beams (columns are chunks); {A.COLOUR_CAPTIONS[colour]}; "
        "the ringed one is the chunk's best, × marks a beam the chunk does not have. Bottom "
        "rows: the K sequences of the next level (slots), labelled with their score minus slot "
        "0's. A line goes from a beam to every slot that took it; slot 0 (thick) always takes "
        "the best beams. Dotted lines: a slot identical to an earlier one. Hover a beam for "
        "the subtree it encodes."
    )


def comparison(trace_of: dict, settings: state.Settings, level: int) -> None:
    st.subheader("The four strategies side by side")
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
    truth = trace_of[settings.alignment]["ground_truth"]
    answers = {trace_of[s]["prediction"] for s in A.STRATEGIES}
    st.markdown(
        f"**Ground truth: {'-' if truth is None else truth}.** "
        + (
            f"The strategies give {len(answers)} different answers."
            if len(answers) > 1
            else "All four strategies give the same answer."
        )
    )
    teacher.plotly_chart(
        C.strategies_figure({s: trace_of[s] for s in A.STRATEGIES}, level, settings.alignment),
        key=KEY + "strategies",
    )
    st.caption(
        "One panel per strategy, the sidebar's framed. Rows are the K slots of the next level, "
        "labelled with their score minus slot 0's (`= j`: the same picks as slot j); columns "
        "are chunks. A cell's number is the beam the slot took from that chunk, its colour that "
        "beam's rank within the chunk (darkest = the chunk's best beam): a light cell is a slot "
        "spending its place on a weaker beam. Hover a cell for the gap log p − log p(best)."
    )
    with st.expander("Summary table and final beam weights", expanded=False):
        summary_table(summaries, settings)


def summary_table(summaries: list, settings: state.Settings) -> None:
    st.dataframe(A.comparison_table(summaries, settings.alignment), hide_index=True)
    teacher.plotly_chart(A.weights_figure(summaries, settings.alignment), key=KEY + "weights")
    st.caption(
        "'mass kept (worst level)': of all K^C ways to combine the chunks' beams, the share of "
        "probability the K slots hold, at the level where it is smallest. 'best combination "
        "survived': some slot held every chunk's best beam at every level."
    )


def slots_section(trace: dict, settings: state.Settings, level: int) -> None:
    st.subheader(f"Slot by slot ({settings.alignment})")
    al = trace["levels"][level]["alignment"]
    st.dataframe(C.slot_table(al), hide_index=True)
    st.caption(
        "Per slot: its score minus slot 0's (slot 0 holds every chunk's best beam, so this is "
        "what the slot gave up), the chunks where it took another beam than the chunk's best "
        "(with that beam's rank and its gap log p − log p(best)), and whether it repeats an "
        "earlier slot (a duplicate spends one of the K beams on nothing new)."
    )


def diff_section(trace_of: dict, settings: state.Settings) -> None:
    st.subheader("Diff of two strategies")
    first, second = C.disagreeing_pair(trace_of, settings.alignment)
    left, right = st.columns(2)
    a = left.selectbox("A", A.STRATEGIES, index=A.STRATEGIES.index(first), key=KEY + "diff.a")
    b = right.selectbox("B", A.STRATEGIES, index=A.STRATEGIES.index(second), key=KEY + "diff.b")
    if a == b:
        st.caption("Pick two different strategies.")
        return
    ta, tb = trace_of[a], trace_of[b]
    slots = C.diff_slots(ta, tb)
    st.markdown(f"**A = {a}**: {C.verdict(ta)}  \n**B = {b}**: {C.verdict(tb)}")
    if slots.empty:
        st.caption("The two strategies filled every slot at every level the same way.")
    else:
        st.dataframe(slots, hide_index=True)
        st.caption(
            "Slots whose picks differ, per level: the chunks where A and B took different "
            "beams. 'same chunk beams' is false above the first level: there each strategy's "
            "chunks were built from its own slots, so beam numbers name different trees."
        )
    teacher.plotly_chart(C.diff_figure(ta, tb), key=KEY + "diff.weights")
    st.dataframe(C.diff_weights(ta, tb), hide_index=True)


@st.cache_resource(max_entries=4, show_spinner="Recording the levels…")
def rerunner(model_id: str, text: str, seed: int, k: int, w: int, alignment: str):
    """One recorded run that keeps every aligned level's state (see rir_core.counterfactual)."""
    from rir_core.counterfactual import Rerunner

    loaded = state.current_model()
    if loaded.model_id != model_id:
        raise RuntimeError(f"model {model_id!r} is not the one loaded ({loaded.model_id!r}).")
    return Rerunner.record(
        loaded.model, text, seed=seed, beam_size=k, chunk_width=w, alignment=alignment
    )


def counterfactual(
    loaded: state.LoadedModel, text: str, trace: dict, settings: state.Settings, level: int
) -> None:
    import time

    from rir_core.counterfactual import Force, forced_run

    st.subheader("Counterfactual: force one alignment choice")
    st.caption(
        f"Make one slot of the alignment after level {level} take another beam of one chunk, "
        "and run only the levels above it again (from the chunks' stored root vectors, same "
        f"seed {settings.seed}): does the answer change?"
    )
    al = trace["levels"][level]["alignment"]
    k, n_chunks = len(al["slots"]), len(al["chunk_scores"])
    a, b, c, d = st.columns(4, vertical_alignment="bottom")
    slot = a.number_input("Slot", 0, k - 1, 0, key=KEY + "cf.slot")
    chunk = b.number_input("Chunk", 0, n_chunks - 1, 0, key=KEY + "cf.chunk")
    taken = al["slots"][slot]["picks"][chunk]
    default = next((x for x in range(k) if x != taken and al["chunk_valid"][chunk][x]), taken)
    beam = c.number_input(
        "Beam", 0, k - 1, default, key=KEY + f"cf.beam.{slot}.{chunk}",
        help=f"Slot {slot} took beam {taken} of chunk {chunk}.",
    )  # fmt: skip
    check = st.checkbox(
        "Also run the whole model with this choice forced, and compare",
        key=KEY + "cf.check",
        help="The rerun from the stored level must give exactly the same logits.",
    )
    args = (loaded.model_id, text, settings.seed, settings.beam_size, settings.chunk_width)
    if pressed(d, "Rerun the levels above", KEY + "cf.run", type="primary", width="stretch"):
        force = Force(level, int(slot), int(chunk), int(beam))
        rr = rerunner(*args, settings.alignment)
        try:
            rr.check(force)
        except ValueError as exc:
            st.error(str(exc)[0].upper() + str(exc)[1:])
            return
        start = time.perf_counter()
        outcome = rr.rerun(force)
        seconds = time.perf_counter() - start
        same = None
        if check:
            full = forced_run(
                loaded.model, text, force, seed=settings.seed, beam_size=settings.beam_size,
                chunk_width=settings.chunk_width, alignment=settings.alignment,
            )  # fmt: skip
            same = bool((full.logits == outcome.logits).all())
        ss[KEY + "cf.result"] = (args, settings.alignment, force, taken, outcome, seconds, same)
    stored = ss.get(KEY + "cf.result")
    if stored is None or stored[:2] != (args, settings.alignment):
        return
    _, _, force, was, outcome, seconds, same = stored
    truth = trace["ground_truth"]
    left, right = st.columns(2)
    left.metric(
        "As run",
        trace["prediction"],
        help=f"p = {trace['probabilities'][trace['prediction']]:.3f}",
    )
    left.caption(f"slot {force.slot} took beam {was} of chunk {force.chunk} · {C.verdict(trace)}")
    right.metric(
        "Forced",
        outcome.prediction,
        delta="answer changed" if outcome.prediction != trace["prediction"] else "same answer",
        delta_color="off",
        delta_arrow="off",
    )
    mark = "" if truth is None else (" ✓" if outcome.prediction == truth else " ✗")
    right.caption(
        f"slot {force.slot} takes beam {force.beam} of chunk {force.chunk} · predicts "
        f"{outcome.prediction} (p = {outcome.probabilities[outcome.prediction]:.3f}) · truth "
        f"{'-' if truth is None else truth}{mark}"
    )
    st.dataframe(
        [
            {
                "final beam": i,
                "weight as run": round(fb["weight"], 4),
                "weight forced": round(w, 4),
                "change": C.fmt_delta(w - fb["weight"]),
            }
            for i, (fb, w) in enumerate(zip(trace["final_beams"], outcome.weights, strict=True))
        ],
        hide_index=True,
    )
    note = f"Re-ran levels {force.level + 1} and up in {seconds * 1000:.0f} ms."
    if same is not None:
        note += (
            " A full run with the same forced choice gives exactly the same logits."
            if same
            else " A full run with the same forced choice gives DIFFERENT logits (a bug)."
        )
    st.caption(note)


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
        teacher.plotly_chart(
            A.accuracy_figure(run.bucket_stats(int(bucket)), A.STRATEGIES), key=KEY + "accuracy"
        )
    differ = run.disagreements()
    st.markdown(f"**Expressions where the strategies disagree: {len(differ)}** of {len(run.texts)}")
    if differ:
        st.dataframe(
            [
                {
                    "tokens": run.lengths[i],
                    "truth": run.labels[i],
                    **{s: run.predictions[s][i] for s in A.STRATEGIES},
                    "open": explorer_link(run.texts[i], settings, settings.alignment),
                    "expression": run.texts[i],
                }
                for i in differ[:FAILURES_SHOWN]
            ],
            hide_index=True,
            column_config={
                "open": st.column_config.LinkColumn(
                    "open",
                    display_text="Explorer ↗",
                    help="Opens it in the Explorer with the sidebar's strategy (new tab); "
                    "switch the strategy there to see the answers change.",
                )
            },
            key=KEY + "disagreements",
        )
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
        level = choose_level(trace)
        level_summary(trace, level)
        comparison(trace_of, settings, level)
        slots_section(trace, settings, level)
        picture(trace, settings, level)
        diff_section(trace_of, settings)
        counterfactual(loaded, parsed.canonical, trace, settings, level)
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
