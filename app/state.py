"""Shared state of the app's pages: the model (loaded once per server), cached traces, the
inference settings in the sidebar and their mirror in the URL.

Which model the app uses is chosen by the environment variable ``RIR_APP_MODEL``:

=================  ==========================================================================
(unset), "auto"    the shipped model in ``pretrained/rir_ebt_grc/``; while it is missing (or
                   damaged) a randomly initialised RIR-EBT-GRC, labelled as such in the UI
"random"           that random model: the paper's config with D = 64 (seed 0)
"random-small"     a tiny random model (D = 16) for fast tests
a path             a checkpoint directory, loaded with ``rir_core.checkpoint.load_checkpoint``
=================  ==========================================================================

The settings live in one plain dict in ``st.session_state`` (see :func:`init_session`), so
every page shares them; the widgets named ``settings.*`` show and edit it. A link carries the
expression and settings as query parameters (see :data:`QUERY_KEYS`).

The model picker in the sidebar (:func:`model_picker`, drawn by the router for every page) lets
a session use another model than that default: a run of the Training page (or of the command
line) in ``runs/`` or an uploaded checkpoint (see ``app/model_store.py``). The choice is a key,
kept in the session and in the URL (``model=run:<id>``), never a path.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any

import streamlit as st
import torch

from rir_core.config import Alignment, ModelConfig
from rir_core.listops import DEFAULT_MAX_TOKENS, ListOpsSyntaxError, parse, to_text

log = logging.getLogger(__name__)

# One thread: the model's tensors are small (D <= 128), so a second thread gains little, and on a
# busy 2-core machine two threads wait on each other (a 1,000-token trace took 5-8 s with two,
# 0.7 s with one, next to a training run).
TORCH_THREADS = 1
torch.set_num_threads(TORCH_THREADS)

MODEL_ENV = "RIR_APP_MODEL"
RANDOM_SEED = 0  # initialisation seed of the fallback random models
DEFAULT_EXPRESSION = "[MAX 2 9 [MIN 4 7 ] 0 ]"

BEAM_RANGE = (1, 16)  # K in the sidebar
WIDTH_RANGE = (2, 100)  # W in the sidebar
SEED_MAX = 2**31 - 1

# session_state key -> query parameter name (a link reproduces the view).
QUERY_KEYS = {
    "settings.expression": "expr",
    "settings.seed": "seed",
    "settings.beam_size": "k",
    "settings.chunk_width": "w",
    "settings.alignment": "align",
    "explorer.level": "level",
    "explorer.chunk": "chunk",
    "explorer.step": "step",
    "explorer.final_beam": "beam",
}
SETTING_KEYS = [k for k in QUERY_KEYS if k.startswith("settings.")]
# Teacher mode (app/teacher.py): on from ?teacher=1; the links the pages write keep it.
TEACHER_FLAG = "teacher.on"

# Counts model runs of the trace cache (tests check that stepping never runs the model).
TRACE_RUNS = {"count": 0}


# --------------------------------------------------------------------------------------------
# Routing


def ensure_router() -> None:
    """Make a page that Streamlit ran on its own go through the router (``app/main.py``).

    Streamlit treats a ``pages/`` folder next to the entry script as a legacy multipage app
    until the first ``st.navigation`` call of the server process. So a shared link straight to
    a page (``/alignment?expr=...``) on a freshly started server runs that page alone, without
    the router's set-up. Every page calls this first: in that case it switches the legacy mode
    off (what ``st.navigation`` itself does) and reruns, which now starts at the router and
    lands on the same page, query parameters and all.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - another Streamlit: at least set the state up
        init_session()
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    init_session()  # a no-op once the router has run


# --------------------------------------------------------------------------------------------
# The model


@dataclass
class LoadedModel:
    """The model in use and what the UI says about it."""

    model: torch.nn.Module
    model_id: str  # part of every trace's cache key
    name: str
    source: str  # a checkpoint path, or "untrained (random weights)"
    trained: bool
    note: str = ""  # why the app fell back to random weights, if it did
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def _random_model(small: bool) -> LoadedModel:
    from rir_core.model import build_model

    if small:
        overrides = dict(hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8)
    else:  # the paper's config at half width, so a CPU answers quickly
        overrides = dict(hidden_size=64, scorer_slice=32, scorer_hidden=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model = build_model(**overrides).eval()
    tag = "random-small" if small else "random"
    return LoadedModel(
        model=model,
        model_id=f"{tag}:seed{RANDOM_SEED}",
        name="RIR-EBT-GRC" + (" (tiny)" if small else ""),
        source="untrained (random weights)",
        trained=False,
    )


def _checkpoint_model(path: str | None) -> LoadedModel:
    from rir_core.checkpoint import load_checkpoint
    from rir_core.pretrained import load_pretrained_with_info

    model, info = load_pretrained_with_info("cpu") if path is None else load_checkpoint(path)
    created = info.metadata.get("created_at", "")
    return LoadedModel(
        model=model.eval(),
        model_id=f"checkpoint:{info.path}:{created}",
        name=info.model_config.model_type.upper().replace("_", "-"),
        source=str(info.path),
        trained=True,
        metrics=dict(info.metadata.get("metrics", {})),
    )


@st.cache_resource(show_spinner="Loading the model…")
def load_model(spec: str) -> LoadedModel:
    """The model named by ``spec`` (see the module docstring), once per server process."""
    if spec == "random-small":
        return _random_model(small=True)
    if spec == "random":
        return _random_model(small=False)
    try:
        return _checkpoint_model(None if spec == "auto" else spec)
    except (FileNotFoundError, ValueError) as exc:  # CheckpointError is a ValueError
        log.warning("falling back to a random model: %s", exc)
        loaded = _random_model(small=False)
        loaded.note = str(exc)
        return loaded


def default_model() -> LoadedModel:
    """The server's model (``RIR_APP_MODEL``), used unless the session picked another."""
    return load_model(os.environ.get(MODEL_ENV, "").strip() or "auto")


def current_model() -> LoadedModel:
    """The model this session uses: the one picked in the sidebar, else the default."""
    key = chosen_model_key()
    if key:
        picked = _picked_model(key)
        if picked is not None:
            return picked
        st.session_state[MODEL_STORE] = ""  # that run or upload is gone
    return default_model()


# --------------------------------------------------------------------------------------------
# The model picker: the default model, the runs in runs/, uploaded checkpoints

MODEL_STORE = "rir.model"  # the picked model's key (see app/model_store.py); "" = the default
MODEL_PARAM = "model"  # its query parameter
MODEL_APPLIED = "rir.model.applied"  # the model whose defaults the settings were last set from
MODEL_OPTIONS_TTL_S = 3  # how often the picker looks for new runs and uploads


def chosen_model_key() -> str:
    return str(st.session_state.get(MODEL_STORE) or "")


def set_model(key: str) -> None:
    """Use the model ``key`` (``run:<id>``, ``upload:<name>``, "" for the default)."""
    st.session_state[MODEL_STORE] = key


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def load_picked_model(path: str, stamp: int) -> LoadedModel:
    """A checkpoint from the picker, once per server; ``stamp`` (the sidecar's modification
    time) makes a checkpoint rewritten by a running job load again."""
    try:
        return _checkpoint_model(path)
    except (FileNotFoundError, ValueError) as exc:  # CheckpointError is a ValueError
        log.warning("falling back to a random model: %s", exc)
        loaded = _random_model(small=False)
        loaded.note = str(exc)
        return loaded


def _picked_model(key: str) -> LoadedModel | None:
    from app import model_store

    try:
        path = model_store.resolve(key)
        stamp = (path / model_store.SIDECAR).stat().st_mtime_ns
    except (KeyError, OSError):
        return None
    return load_picked_model(str(path), stamp)


def _model_from_query() -> str:
    """The link's ``model=`` key, or "" (the default model) when it names none this server
    has; a link notice (:func:`link_notice`) then says so."""
    from app import model_store

    key = st.query_params.get(MODEL_PARAM, "")
    try:
        model_store.resolve(key)
    except KeyError:
        if key.strip():
            _link_problem(f"the model {key.strip()[:80]!r}, which this server does not have", "")
        return ""
    return key


@st.cache_data(ttl=MODEL_OPTIONS_TTL_S, show_spinner=False)
def _model_options(runs: str, default_label: str) -> dict[str, str]:
    from pathlib import Path

    from app import model_store

    return {o.key: o.label for o in model_store.options(default_label, Path(runs))}


def _store_model() -> None:
    st.session_state[MODEL_STORE] = st.session_state["model.choice"]


def model_picker() -> None:
    """The sidebar's "Model" box: the default model, the runs and the uploaded checkpoints."""
    from app.jobs import runs_dir

    default = default_model()
    label = f"Default: {default.name}" + ("" if default.trained else " (untrained)")
    choices = _model_options(str(runs_dir()), label)
    key = chosen_model_key()
    if st.session_state.get(MODEL_APPLIED) != key:  # another model: take its K, W, alignment
        defaults = _defaults()
        for name in ("settings.beam_size", "settings.chunk_width", "settings.alignment"):
            st.session_state[STORE][name] = defaults[name]
        st.session_state[MODEL_APPLIED] = key
    if key not in choices:  # picked moments ago (the list is cached for a few seconds)
        choices = {**choices, key: key.replace(":", " ", 1).capitalize()}
    st.session_state["model.choice"] = key
    st.sidebar.selectbox(
        "Model",
        list(choices),
        format_func=choices.get,
        key="model.choice",
        on_change=_store_model,
        help="Which trained network every page runs: the default one, a run of the Training "
        "page (in runs/) or a checkpoint uploaded there.",
    )


# --------------------------------------------------------------------------------------------
# Traces


# A 1,000-token trace is ~30 MB of Python objects: keep a dozen.
TRACE_CACHE_ENTRIES = 12


@st.cache_resource(max_entries=TRACE_CACHE_ENTRIES, show_spinner="Running the model…")
def get_trace(
    model_id: str, expression: str, seed: int, beam_size: int, chunk_width: int, alignment: str
) -> dict[str, Any]:
    """The trace (``Trace.to_dict()``'s keys and values) of one canonical expression.

    Keyed by (model id, expression, seed, K, W, alignment): stepping through a trace only reads
    this cached value and never runs the model again. A resource cache, not ``cache_data``:
    every caller shares one object, READ-ONLY, instead of unpickling a copy (0.4 s for 1,000
    tokens), and the dict is taken from the fresh trace's fields without ``to_dict``'s deep
    copy (1.3 s for 1,000 tokens).
    """
    loaded = current_model()
    if loaded.model_id != model_id:  # the environment changed under a running server
        raise RuntimeError(f"model {model_id!r} is not the one loaded ({loaded.model_id!r}).")
    TRACE_RUNS["count"] += 1
    with torch.inference_mode():
        trace = loaded.model.trace(
            expression,
            seed=seed,
            alignment=alignment,
            beam_size=beam_size,
            chunk_width=chunk_width,
        )
    return {f.name: getattr(trace, f.name) for f in fields(trace)}


def trace_for(loaded: LoadedModel, expression: str, settings: Settings) -> dict[str, Any]:
    """The cached trace of ``expression`` under ``settings`` (shared: never modify it).

    The session also keeps the last trace it got, so reruns that only step through the view
    skip even the cache's key hashing.
    """
    key = (
        loaded.model_id,
        expression,
        settings.seed,
        settings.beam_size,
        settings.chunk_width,
        settings.alignment,
    )
    memo = st.session_state.get("trace.memo")
    if memo is not None and memo[0] == key:
        return memo[1]
    trace = get_trace(*key)
    st.session_state["trace.memo"] = (key, trace)
    return trace


@dataclass
class Parsed:
    """An expression as typed: its canonical text, or why it does not parse."""

    text: str
    canonical: str | None = None
    expr: Any = None
    error: str | None = None
    position: int | None = None


def parse_expression(text: str) -> Parsed:
    """Parse what the user typed; never raises."""
    if not text.strip():
        return Parsed(text, error="Type a ListOps expression, e.g. [MAX 2 9 ].", position=0)
    try:
        expr = parse(text, max_tokens=DEFAULT_MAX_TOKENS)
    except ListOpsSyntaxError as exc:
        message = str(exc)
        if "more than the limit" in message:
            message = (
                f"This expression is too long: {message}. The explorer draws inputs of up to "
                f"{DEFAULT_MAX_TOKENS:,} tokens."
            )
            return Parsed(text, error=message)
        return Parsed(
            text, error=f"This is not a ListOps expression: {message}.", position=exc.position
        )
    return Parsed(text, canonical=to_text(expr), expr=expr)


# --------------------------------------------------------------------------------------------
# Settings: sidebar widgets, session state and the URL


@dataclass(frozen=True)
class Settings:
    expression: str
    seed: int
    beam_size: int
    chunk_width: int
    alignment: str


STORE = "rir.settings"  # the canonical settings: a plain dict in session state


def _defaults() -> dict[str, Any]:
    cfg = current_model().config
    return {
        "settings.expression": DEFAULT_EXPRESSION,
        "settings.seed": 0,
        "settings.beam_size": min(max(cfg.beam_size, BEAM_RANGE[0]), BEAM_RANGE[1]),
        "settings.chunk_width": min(max(cfg.chunk_width, WIDTH_RANGE[0]), WIDTH_RANGE[1]),
        "settings.alignment": cfg.alignment.value,
    }


def _from_query(key: str, raw: str) -> Any:
    """A query parameter's value for ``key``, or None when it is not a valid one."""
    if key == "settings.expression":
        return raw[:200_000]
    if key == "settings.alignment":
        return raw if raw in {a.value for a in Alignment} else None
    try:
        value = int(raw)
    except ValueError:
        return None
    bounds = {
        "settings.seed": (0, SEED_MAX),
        "settings.beam_size": BEAM_RANGE,
        "settings.chunk_width": WIDTH_RANGE,
    }.get(key, (0, 10**6))
    return value if bounds[0] <= value <= bounds[1] else None


# What a link asked for that this server cannot give (see :func:`link_notice`).
LINK_PROBLEMS = "state.link_problems"  # [(what the link asked for, setting key or "")]
# Why a link's value of a setting is refused: the accepted values, for the notice.
ACCEPTED = {
    "settings.seed": f"a seed is a whole number from 0 to {SEED_MAX:,}",
    "settings.beam_size": f"K is a whole number from {BEAM_RANGE[0]} to {BEAM_RANGE[1]}",
    "settings.chunk_width": f"W is a whole number from {WIDTH_RANGE[0]} to {WIDTH_RANGE[1]}",
    "settings.alignment": "the alignment is one of " + ", ".join(a.value for a in Alignment),
}


def _link_problem(asked: str, key: str) -> None:
    st.session_state.setdefault(LINK_PROBLEMS, []).append((asked, key))


def init_session() -> None:
    """Fill the settings once per session: from the URL where it has them, else defaults.

    The settings live in a plain dict (``STORE``), not in widget state: Streamlit drops a
    widget's state when a run does not draw it (another page, a fragment rerun), while plain
    session-state entries stay. Widgets are bound to the store by :func:`_bound`.
    """
    ss = st.session_state
    if MODEL_STORE not in ss:
        ss[MODEL_STORE] = _model_from_query()
    if STORE in ss:
        return
    defaults = _defaults()
    store: dict[str, Any] = {}
    for key, param in QUERY_KEYS.items():
        value = _from_query(key, st.query_params[param]) if param in st.query_params else None
        if value is None and key in ACCEPTED and param in st.query_params:
            raw = st.query_params[param].strip()[:40]
            _link_problem(f"{param}={raw!r} ({ACCEPTED[key]})", key)
        if value is None:
            value = defaults.get(key)
        if key in SETTING_KEYS:
            store[key] = value
        elif value is not None:  # a page's view (level, chunk, step): the page clamps it
            ss[key] = value
    ss[STORE] = store
    ss[MODEL_APPLIED] = ss[MODEL_STORE]  # the settings above suit the model in use


def _setting_text(key: str, value: Any) -> str:
    """``K = 7``, ``sample alignment``: a setting's value as the notice names it."""
    names = {"settings.seed": "seed", "settings.beam_size": "K", "settings.chunk_width": "W"}
    return f"{value} alignment" if key == "settings.alignment" else f"{names[key]} = {value}"


def link_notice() -> str | None:
    """One sentence on what the session's link asked for and did not get, or None; the
    problems are forgotten once told (the router shows the sentence on the first run).

    ``This link asks for the model 'run:gone', which this server does not have, and k='99' (K is
    a whole number from 1 to 16), so the page uses the default model (RIR-EBT-GRC) and K = 7
    instead.``
    """
    problems = st.session_state.pop(LINK_PROBLEMS, None)
    if not problems:
        return None
    store = st.session_state.get(STORE, {})
    asked, instead = [], []
    for what, key in problems:
        asked.append(what)
        if key:
            instead.append(_setting_text(key, store.get(key)))
        else:
            instead.append(f"the default model ({default_model().name})")
    return (
        f"This link asks for {_and(asked)}, so the page uses {_and(instead)} instead "
        "(the address now shows what is used)."
    )


def show_link_notice() -> None:
    """The router's call: :func:`link_notice` as a warning at the top of the page, if any."""
    from app.figures import md_escape

    notice = link_notice()
    if notice:
        st.warning(md_escape(notice), icon=":material/link_off:")


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def set_setting(key: str, value: Any) -> None:
    """Change one setting (for callbacks: presets, random expressions)."""
    st.session_state[STORE][key] = value


def _store_widget(key: str, then=None) -> None:
    st.session_state[STORE][key] = st.session_state[key]
    if then is not None:
        then()


def _bound(key: str, then=None) -> dict[str, Any]:
    """Widget arguments that show the stored setting ``key`` and store the user's changes.

    The widget takes the same key as the setting; its value is set from the store before it
    is drawn (allowed: it is not drawn yet in this run), and its on_change writes back.
    """
    st.session_state[key] = st.session_state[STORE][key]
    return {"key": key, "on_change": _store_widget, "args": (key, then)}


def sidebar_settings() -> Settings:
    """The inference-time settings in the sidebar (read by the model, not learned)."""
    sb = st.sidebar
    sb.header("Inference settings")
    sb.caption("These change how the trained model searches, not its weights.")
    sb.slider(
        "Beam size K",
        *BEAM_RANGE,
        help="How many partial trees the beam search keeps at every merge step.",
        **_bound("settings.beam_size"),
    )
    sb.slider(
        "Chunk width W",
        *WIDTH_RANGE,
        help="Outer recursion: sequences of at least 1.5·W nodes are cut into chunks of W nodes.",
        **_bound("settings.chunk_width"),
    )
    sb.selectbox(
        "Beam alignment",
        [a.value for a in Alignment],
        help="How the K beams of the next level are assembled from each chunk's "
        "beams: sample (the paper's), rank, random, kbest (exact).",
        **_bound("settings.alignment"),
    )
    sb.number_input(
        "Seed",
        0,
        SEED_MAX,
        step=1,
        help="Fixes every random draw (alignment sampling) of the forward pass.",
        **_bound("settings.seed"),
    )
    return current_settings()


def reset_view() -> None:
    """A new expression starts the Explorer's view from the beginning."""
    ss = st.session_state
    ss["explorer.preset"] = None
    ss["explorer.level"], ss["explorer.chunk"], ss["explorer.step"] = 0, 0, 1
    ss.pop("explorer.final_beam", None)  # the best beam of the new trace


def expression_box(container: Any = st) -> str:
    """The "ListOps expression" text box (every page that has one draws it with this)."""
    return container.text_input(
        "ListOps expression",
        help="Operators [MIN [MAX [MED [SM, digits 0-9, and ] to close. Press Enter to run.",
        **_bound("settings.expression", then=reset_view),
    )


def current_settings() -> Settings:
    store = st.session_state[STORE]
    return Settings(
        expression=store["settings.expression"],
        seed=int(store["settings.seed"]),
        beam_size=int(store["settings.beam_size"]),
        chunk_width=int(store["settings.chunk_width"]),
        alignment=str(store["settings.alignment"]),
    )


def sync_query_params(extra: dict[str, Any] | None = None) -> None:
    """Write the expression, settings (and the page's view, ``extra``) into the URL."""
    s = current_settings()
    params = {
        "expr": s.expression,
        "seed": str(s.seed),
        "k": str(s.beam_size),
        "w": str(s.chunk_width),
        "align": s.alignment,
    }
    if chosen_model_key():
        params[MODEL_PARAM] = chosen_model_key()
    if st.session_state.get(TEACHER_FLAG):
        params["teacher"] = "1"
    params.update({k: str(v) for k, v in (extra or {}).items()})
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)


def model_panel(loaded: LoadedModel) -> None:
    """Name, config summary, origin and recorded accuracy of the model in use."""
    from app.figures import accuracy_line, model_summary

    summary = model_summary(loaded.config.to_dict())
    if loaded.trained:
        from app.model_store import source_label

        st.caption(f"**Model:** {loaded.name} · {summary}  \nfrom {source_label(loaded.source)}")
        accuracies = accuracy_line(loaded.metrics)
        if accuracies:
            st.caption(f"**Recorded accuracy:** {accuracies}")
        return
    why = f" ({loaded.note.rstrip('.')})" if loaded.note else ""
    st.warning(
        f"**Model: {loaded.name}, untrained (random weights)** · {summary}. "
        f"No trained model is loaded{why}, so the predictions are chance-level; the trees "
        "and the search still show exactly what this network computes.",
        icon=":material/warning:",
    )


# --------------------------------------------------------------------------------------------
# Presets


@st.cache_data(show_spinner=False)
def presets() -> dict[str, str]:
    """A handful of instructive expressions (the long ones drawn by the generator, fixed seed)."""
    from rir_core.generate import Recipe, generate

    return {
        "Shallow: one nested list": DEFAULT_EXPRESSION,
        "Every operator": "[SM [MIN 3 8 ] [MAX 1 5 2 ] [MED 9 4 6 7 ] 2 ]",
        "Deep: nested seven times": (
            "[MAX 1 [MIN 9 [SM 2 [MED 3 [MAX 4 [MIN 8 [SM 5 6 ] ] ] 7 ] ] 0 ] ]"
        ),
        "Flat: one operator, nine arguments": "[SM 1 2 3 4 5 6 7 8 9 ]",
        "Long: ~100 tokens, chunked": generate(Recipe(95, 105), 1, seed=7)[0].text,
        "Very long: ~1,000 tokens, two levels of chunks": generate(Recipe(950, 1000), 1, seed=7)[
            0
        ].text,
    }
