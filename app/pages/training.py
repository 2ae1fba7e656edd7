"""Training: train a small RIR-EBT-GRC here, watch it learn, stop or resume it, use the model.

Thin by design: a run is a worker process (``app/jobs.py``) that writes everything to its run
folder; this page only starts, stops and reads back. So a rerun, a closed tab or a server
restart loses nothing, and the run shown is in the URL (``?job=<id>``). The estimate comes from
``app/estimate.py``, the charts from ``app/training_figures.py``, uploads and downloads from
``app/model_store.py`` (a file the browser refuses is explained by ``app/uploads.py``).
"""

import sys
import uuid
from pathlib import Path

# Streamlit may run a page without the router (see state.ensure_router): find the repo root.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


import streamlit as st

from app import estimate, jobs, model_store, run_log, state, teacher, uploads
from app import training_figures as TF
from app.figures import md_escape
from rir_core.config import Alignment
from rir_core.presets import PRESETS

state.ensure_router()

REFRESH_S = 1.0  # the live view re-reads the run's log this often
DEFAULT_EVAL_LIMIT = 50  # examples per split of the standard suite
KEY = "training."  # prefix of this page's widget keys
STATUS_COLOURS = {
    "starting": "blue", "running": "blue", "stopping": "orange", "stopped": "orange",
    "finished": "green", "failed": "red", "command line": "gray",
}  # fmt: skip


def session_owner() -> str:
    """A token for this browser session: one running job per session."""
    return st.session_state.setdefault(KEY + "owner", uuid.uuid4().hex)


def badge(status: str) -> str:
    return f":{STATUS_COLOURS.get(status, 'gray')}-badge[{status}]"


# Buttons act in on_click callbacks: those run before the script, so a click survives any rerun
# of the run it starts. What they have to say is kept for the script to show (``flash``).


def _flash(message: str) -> None:
    st.session_state[KEY + "flash"] = message


def _show_flash() -> None:
    message = st.session_state.pop(KEY + "flash", None)
    if message:
        st.error(md_escape(message))


def _act(action, *args) -> None:
    """Run a job action from a callback; a refusal becomes the flash sentence."""
    try:
        return action(*args)
    except jobs.JobError as err:
        _flash(str(err))
        return None


def _start(settings: jobs.JobSettings) -> None:
    job = _act(lambda: jobs.start_job(settings, owner=session_owner()))
    if job is not None:
        st.query_params["job"] = job.id


def _evaluate(job_id: str) -> None:
    _act(jobs.start_evaluation, job_id, int(st.session_state[KEY + "eval_limit"]))


def _show_run(job_id: str | None = None) -> None:
    st.query_params["job"] = job_id or st.session_state[KEY + "pick"]


def _pin_parse(job_id: str, latest: int) -> None:
    chosen = st.session_state[KEY + "parse_step"]
    st.session_state[KEY + "parse_pinned"] = None if chosen == latest else (job_id, chosen)


def _open_in_explorer(model_key: str) -> None:
    state.set_model(model_key)
    st.session_state[KEY + "goto"] = "pages/explorer.py"  # switch_page is not allowed here


# --------------------------------------------------------------------------------------------
# New run: preset, settings, estimate, start


def _fill_from_preset() -> None:
    s = jobs.JobSettings.from_preset(st.session_state[KEY + "preset"])
    for name, value in s.to_dict().items():
        if name != "preset":
            st.session_state[KEY + name] = 0 if value is None else value
    st.session_state[KEY + "max_minutes"] = float(s.max_minutes or 0.0)  # a float widget


def _settings_widgets() -> jobs.JobSettings:
    ss = st.session_state
    if KEY + "hidden_size" not in ss:  # first visit, or the widgets were not drawn last run
        ss.setdefault(KEY + "preset", "classroom")
        _fill_from_preset()
    st.selectbox(
        "Preset",
        list(PRESETS),
        key=KEY + "preset",
        on_change=_fill_from_preset,
        format_func=lambda n: f"{n}: {PRESETS[n].description}",
        help="A starting point; every field below can then be changed.",
    )
    st.markdown("**Model**")
    c = st.columns(5)
    c[0].number_input("Hidden size D", 8, 512, step=8, key=KEY + "hidden_size")
    c[1].number_input("Beam size K", 1, 16, key=KEY + "beam_size")
    c[2].number_input("Chunk width W", 2, 200, key=KEY + "chunk_width")
    c[3].selectbox("Beam alignment", [a.value for a in Alignment], key=KEY + "alignment")
    c[4].checkbox("S4D layer", key=KEY + "use_s4d", help="The pre-chunk S4D layer (SPEC 5).")
    # What a lesson varies first; the run-keeping fields in a block of their own, which teacher
    # mode hides whole (hiding single fields left holes in these rows).
    st.markdown("**Training and data** (0 = no limit)")
    c = st.columns(5)
    c[0].number_input("Learning rate", 1e-5, 1.0, step=1e-4, format="%.5f", key=KEY + "lr")
    c[1].number_input("Epochs", 1, 500, key=KEY + "epochs")
    c[2].number_input("Training examples", 0, 90_000, step=500, key=KEY + "train_n")
    c[3].number_input("Dev examples", 0, 1_000, step=50, key=KEY + "dev_n")
    c[4].number_input("Max training length", 0, 100, key=KEY + "max_train_tokens",
                      help="Drop training expressions longer than this many tokens.")  # fmt: skip
    with st.container(key=KEY + "advanced"):
        st.markdown("**Run keeping** (0 = no limit)")
        c = st.columns(6)
        c[0].number_input("Batch size", 1, 1024, key=KEY + "batch_size")
        c[1].number_input("Seed", 0, 2**31 - 1, key=KEY + "seed")
        c[2].selectbox("Device", ["auto", "cpu", "cuda"], key=KEY + "device")
        c[3].number_input("Time limit (min)", 0.0, 6000.0, step=1.0, key=KEY + "max_minutes")
        c[4].number_input("Evaluate every (steps)", 0, 100_000, key=KEY + "eval_every",
                          help="0: at the end of every epoch.")  # fmt: skip
        c[5].number_input("Early stopping", 0, 1_000, key=KEY + "patience",
                          help="Stop after this many dev evaluations without improvement "
                          "(0: never stop early).")  # fmt: skip
    st.text_input(
        "Watch this expression",
        key=KEY + "watch",
        help="At every dev evaluation the page redraws how the model parses it.",
    )
    values = {name: ss[KEY + name] for name in jobs.JobSettings.__dataclass_fields__}
    for name in ("train_n", "dev_n", "max_train_tokens", "max_minutes", "max_steps"):
        values[name] = values[name] or None
    for name in ("hidden_size", "beam_size", "chunk_width", "batch_size", "epochs", "seed",
                 "eval_every", "patience"):  # fmt: skip
        values[name] = int(values[name])
    values["max_minutes"] = float(values["max_minutes"]) if values["max_minutes"] else None
    return jobs.JobSettings.from_dict(values)


def new_run() -> None:
    settings = _settings_widgets()
    if settings.is_custom():
        st.caption(f"Custom settings, based on the {settings.preset} preset.")
    problem = settings.problem()
    if problem:
        st.error(md_escape(f"These settings cannot train: {problem}"))  # quotes the watch field
    else:
        est = estimate.estimate(settings, jobs.runs_dir())
        limit = {
            "max_minutes": " — the time limit ends it first",
            "max_steps": " — the step limit ends it first",
        }.get(est.capped or "", "")
        when = (
            f"about **{TF.format_duration(est.seconds)}**"
            if est.seconds is not None
            else "unknown until it starts"
        )
        st.info(
            f"Estimated time: {when} ({est.steps:,} steps, {est.evaluations:,} dev "
            f"evaluations{limit})."
            + (" Early stopping may end it sooner." if settings.patience else ""),
            icon=":material/schedule:",
        )
        st.caption(est.basis)
    active = jobs.active_jobs()
    mine = [j for j in active if j.owner == session_owner()]
    blocked = bool(problem)
    if mine:
        st.info(f"This session's run {mine[0].id} is in progress: stop it before starting another.")
        blocked = True
    elif len(active) >= jobs.max_jobs():
        st.warning(jobs.capacity_message(len(active), jobs.max_jobs()), icon=":material/block:")
        blocked = True
    st.button(
        "Start training",
        type="primary",
        disabled=blocked,
        key=KEY + "start",
        on_click=_start,
        args=(settings,),
    )


# --------------------------------------------------------------------------------------------
# One run: status, controls, live curves, the parse now, evaluation


def _summary(job: jobs.Job) -> str:
    s = job.settings
    if not s:
        return "a run of the command line (python -m rir_core.train)"
    data = f"{s['train_n']:,} examples" if s.get("train_n") else "the whole training split"
    if s.get("max_train_tokens"):
        data += f" of ≤ {s['max_train_tokens']} tokens"
    return (
        f"{jobs.JobSettings.from_dict(s).label()} · D {s['hidden_size']} · K {s['beam_size']} · "
        f"W {s['chunk_width']} · {s['alignment']} · {'S4D' if s['use_s4d'] else 'no S4D'} · "
        f"lr {s['lr']:g} · batch {s['batch_size']} · {data} · {s['epochs']} epoch(s)"
    )


def controls(job: jobs.Job) -> None:
    cells = iter(st.columns(4))  # the buttons there are, left to right
    if job.active:
        next(cells).button(
            "Stop", icon=":material/stop:", key=KEY + "stop",
            on_click=_act, args=(jobs.stop_job, job.id),
            help="Finishes the current step and saves a checkpoint that Resume continues from.",
        )  # fmt: skip
    elif job.resumable:
        next(cells).button(
            "Resume", icon=":material/play_arrow:", key=KEY + "resume",
            on_click=_act, args=(jobs.resume_job, job.id, session_owner()),
            help="Continues exactly where it stopped.",
        )  # fmt: skip
    ckpt = job.checkpoint
    if ckpt is None:
        return
    next(cells).button(
        "Open in the Explorer", icon=":material/account_tree:", key=KEY + "open",
        on_click=_open_in_explorer, args=(f"run:{job.id}",),
        help=f"Use this run's {ckpt.name}/ model on every page (sidebar: Model).",
    )  # fmt: skip
    next(cells).download_button(
        "Download the model",
        data=lambda: model_store.zip_checkpoint(ckpt),
        file_name=f"{job.id}-{ckpt.name}.zip",
        mime="application/zip",
        icon=":material/download:",
        on_click="ignore",
        key=KEY + "download",
        help=f"The {ckpt.name}/ checkpoint: model.safetensors and model.json.",
    )


def parse_now(job: jobs.Job) -> None:
    steps = run_log.parse_steps(job.dir)
    st.subheader("How the model parses this expression now")
    if not steps:
        st.caption(
            "Recorded only for runs started on this page."
            if job.external
            else "Drawn as soon as the model is built, then at every dev evaluation."
        )
        return
    # Follow the newest evaluation unless the student moved the slider back ("pinned"). The
    # value is set on every run: a widget's own state does not survive a visit to another page.
    ss = st.session_state
    pin = ss.get(KEY + "parse_pinned")
    step = pin[1] if pin and pin[0] == job.id and pin[1] in steps else steps[-1]
    if len(steps) > 1:
        ss[KEY + "parse_step"] = step
        st.select_slider(
            "Evaluation (step)", steps, key=KEY + "parse_step",
            on_change=_pin_parse, args=(job.id, steps[-1]),
        )  # fmt: skip
    record = run_log.load_parse(job.dir, step)
    if record is None:
        return
    teacher.plotly_chart(TF.parse_figure(record), key=KEY + "chart.parse")
    recall = TF.gold_recall(record)
    st.caption(
        "The model's best tree (beam 1). Green nodes are constituents of the real (gold) tree"
        + (f": {recall:.0%} of them so far" if recall is not None else "")
        + ". Before training the merges are arbitrary; as the model learns they follow the "
        "brackets, so the right value can be computed bottom-up."
    )


def live(job: jobs.Job) -> None:
    """The run's status, controls, progress, curves and parse: re-read every second while the
    run is active (a fragment: the rest of the page does not rerun)."""
    started_live = job.live

    @st.fragment(run_every=REFRESH_S if started_live else None)
    def view() -> None:
        now = jobs.get_job(job.id)
        if now is None:
            return
        if now.live != started_live or st.session_state.get(KEY + "goto"):
            st.rerun()  # started, ended or leaving: redraw the whole page
        st.subheader(f"Run {now.id}")
        st.markdown(f"{badge(now.status)} {_summary(now)}")
        controls(now)
        log = run_log.read_log(now.dir / "log.jsonl")
        p = TF.progress(now.settings, now.planned_steps, log.last_step, log.elapsed_before)
        if now.active:
            st.progress(p.fraction, text=p.text)
        elif now.external and log.last_step is not None:
            st.caption(f"Last logged: {p.text.split(' · ETA')[0]}.")
        if now.error:
            st.error(now.error)
        elif now.result and not now.active:
            planned = f" (of {now.planned_steps:,} planned)" if now.planned_steps else ""
            st.caption(f"{now.result.get('message', '').capitalize()}{planned}.")
        if log.steps:
            curves(str(now.dir), log)
        parse_now(now)

    view()


@st.cache_resource(max_entries=12, show_spinner=False)
def _figures(run_dir: str, n_steps: int, n_evals: int, _log: run_log.RunLog) -> tuple:
    """The three curves, built once per new log line for every viewer of the run."""
    return (
        TF.loss_figure(_log.steps),
        TF.accuracy_figure(_log.steps, _log.evals),
        TF.lr_figure(_log.steps),
    )


def curves(run_dir: str, log: run_log.RunLog) -> None:
    m = st.columns(4)
    loss = TF.ema([s["loss"] for s in log.steps])[-1]
    m[0].metric("Loss (smoothed)", f"{loss:.3f}" if loss is not None else "–")
    acc = TF.ema([s["accuracy"] for s in log.steps])[-1]
    m[1].metric("Train accuracy (smoothed)", f"{acc:.0%}" if acc is not None else "–")
    best = log.evals[-1].get("best_dev_accuracy") if log.evals else None
    m[2].metric("Best dev accuracy", f"{best:.1%}" if best is not None else "–")
    m[3].metric("Learning rate", f"{log.steps[-1]['lr']:.1e}")
    loss, accuracy, lr = _figures(run_dir, len(log.steps), len(log.evals), log)
    c = st.columns([5, 5, 3])
    teacher.plotly_chart(loss, key=KEY + "chart.loss", container=c[0])
    teacher.plotly_chart(accuracy, key=KEY + "chart.accuracy", container=c[1])
    teacher.plotly_chart(lr, key=KEY + "chart.lr", container=c[2])
    composition = _composition(run_dir, len(log.evals), log)
    if composition is not None:
        teacher.plotly_chart(composition, key=KEY + "chart.composition")
        st.caption(
            "Inputs shorter than 1.5 chunk widths run as one chunk: the inner recursion alone "
            "solves them. Longer ones are cut into chunks whose roots the next level must "
            "combine. Solid: held-out dev inputs; dashed: the training batches since the "
            "previous evaluation. A chunked training line far above its held-out line means "
            "the model memorizes its chunked training inputs instead of learning to compose."
        )


@st.cache_resource(max_entries=12, show_spinner=False)
def _composition(run_dir: str, n_evals: int, _log: run_log.RunLog):
    """The per-group accuracy curves (None for logs without them), once per new evaluation."""
    return TF.composition_figure(_log.evals)


def evaluation(job: jobs.Job) -> None:
    if job.external or job.checkpoint is None:
        return
    st.subheader("Accuracy on the standard test suite")
    running = jobs.evaluation(job.id).status == "running"

    @st.fragment(run_every=REFRESH_S if running else None)
    def view() -> None:
        ev = jobs.evaluation(job.id)
        if running and ev.status != "running":
            st.rerun()
        if ev.status == "running":
            st.progress(
                ev.done / max(ev.total, 1),
                text=f"evaluating: {ev.done} of {ev.total} splits, {ev.limit} examples each",
            )
        elif ev.status == "done":
            st.dataframe(
                TF.eval_table(ev.results),
                hide_index=True,
                column_config={"accuracy": st.column_config.ProgressColumn(
                    "accuracy", format="percent", min_value=0.0, max_value=1.0)},
            )  # fmt: skip
            name = Path(ev.checkpoint or "").name
            st.caption(f"First {ev.limit} examples of each split; the run's {name}/ model.")
        elif ev.status == "failed":
            st.error(f"The evaluation failed: {ev.error}")

    view()
    c = st.columns([1, 2], vertical_alignment="bottom")
    c[0].number_input(
        "Examples per split", 1, 2_000, DEFAULT_EVAL_LIMIT, key=KEY + "eval_limit",
        help="The long splits (up to 2,000 tokens) are slow on a CPU: start small.",
    )  # fmt: skip
    c[1].button(
        "Evaluate", disabled=running or job.active, key=KEY + "evaluate",
        on_click=_evaluate, args=(job.id,),
        help="Every split of the standard suite but train.",
    )  # fmt: skip


def show_job(job: jobs.Job) -> None:
    live(job)
    evaluation(job)


# --------------------------------------------------------------------------------------------
# All runs, uploads


def runs_list(jobs_found: list[jobs.Job]) -> None:
    if not jobs_found:
        st.caption(f"No runs yet in {jobs.runs_dir()}.")
        return
    rows = []
    for j in jobs_found:
        last = run_log.read_log(j.dir / "log.jsonl") if not j.external else None
        rows.append({
            "run": j.id,
            "settings": jobs.JobSettings.from_dict(j.settings).label() if j.settings else "CLI",
            "status": j.status,
            "steps": (last.last_step or {}).get("step") if last else None,
            "best dev": (last.evals[-1].get("best_dev_accuracy") if last and last.evals else None),
            "created": j.created_at.replace("T", " ")[:19],
        })  # fmt: skip
    st.dataframe(
        rows, hide_index=True,
        column_config={"best dev": st.column_config.NumberColumn(format="percent")},
    )  # fmt: skip
    c = st.columns([3, 1], vertical_alignment="bottom")
    c[0].selectbox("Run", [j.id for j in jobs_found], key=KEY + "pick")
    c[1].button("Show this run", key=KEY + "show", on_click=_show_run)


def upload() -> None:
    limit = model_store.upload_limit_mb()
    # No ``type=``: a file of another type is refused by the browser with only a red chip (the
    # reason on hover); sent here, it gets model_store's sentence saying what to upload instead.
    files = st.file_uploader(
        f"A checkpoint: one .zip, or its .safetensors and .json files (at most {limit} MB)",
        accept_multiple_files=True,
        max_upload_size=limit,
        key=KEY + "upload",
    )
    uploads.refused_notice(KEY + "upload", limit)  # a file too large never reaches us
    if not files:
        return
    ids = tuple(f.file_id for f in files)
    memo = st.session_state.get(KEY + "upload_memo")
    if memo is None or memo[0] != ids:  # validate each upload once, not at every rerun
        try:
            memo = (ids, model_store.import_upload([(f.name, f.getvalue()) for f in files]))
        except model_store.UploadError as err:
            memo = (ids, str(err))
        st.session_state[KEY + "upload_memo"] = memo
    option = memo[1]
    if isinstance(option, str):
        st.error(md_escape(option), icon=":material/error:")  # quotes the file names
        return
    st.success(f"Added to the model picker: {option.label}.", icon=":material/check:")
    st.button(
        "Open it in the Explorer", key=KEY + "open_upload",
        on_click=_open_in_explorer, args=(option.key,),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------


def render() -> None:
    goto = st.session_state.pop(KEY + "goto", None)
    if goto:
        st.switch_page(goto)
    st.title("Training")
    st.caption(
        "Train a small RIR-EBT-GRC on ListOps in the background, watch its loss, accuracy and "
        "parse trees change, then use it on every page (sidebar: Model)."
    )
    # The run shown is in the URL; the sidebar's page links drop it, so the session remembers it.
    job_id = st.query_params.get("job") or st.session_state.get(KEY + "job")
    job = jobs.get_job(job_id) if job_id else None
    if job_id and job is None:
        shown = job_id if len(job_id) <= 80 else job_id[:77] + "..."  # from the URL: any text
        st.warning(md_escape(f"There is no run {shown!r} in {jobs.runs_dir()}."))
    elif job is not None:
        st.session_state[KEY + "job"] = job.id
        if st.query_params.get("job") != job.id:
            st.query_params["job"] = job.id
    _show_flash()
    if job is not None:
        show_job(job)
    new_tab, runs_tab, upload_tab = st.tabs(["New run", "Runs", "Upload a checkpoint"])
    with new_tab:
        new_run()
    with runs_tab:
        runs_list(jobs.list_jobs())
    with upload_tab:
        upload()


render()
