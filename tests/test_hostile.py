"""Hostile input and nothing lost (issue #10).

Every hostile input gets one sentence that says what is wrong and where, never a traceback, and
the app keeps serving: the same session then runs a valid expression. Checkpoints with wrong
JSON types, paths outside the runs folder, a training worker killed with SIGKILL, two jobs and
two saves at the same moment. The pages run under Streamlit's AppTest with a tiny random model;
one test trains for real in a worker process (D 16, a few dozen steps).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from job_helpers import kill_workers, tiny_checkpoint, tiny_settings
from streamlit.testing.v1 import AppTest

from app import jobs, model_store, run_log, state
from app.figures import md_escape
from rir_core.checkpoint import (
    SIDECAR_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    checkpoint_info,
    load_checkpoint,
    save_checkpoint,
)
from rir_core.listops import evaluate

REPO = Path(__file__).resolve().parents[1]
APP_SCRIPT = REPO / "app" / "main.py"
VALID = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"  # 16 tokens: chunked at W = 4

DEEP = "[MAX " * 10_000 + "1" + " ]" * 10_000
HUGE = "[SM " + "1 " * 100_000 + "]"
# name -> (text, what the sentence must say, the character it must name). Too long: where the
# first token over the page's limit (5,000 tokens, 200 for the watched expression) starts.
HOSTILE = {
    "200,000 characters": (HUGE, "more than the limit", lambda limit: 4 + 2 * (limit - 1)),
    "200,000 letters": ("x" * 200_000, "unknown token 'xxxx", 0),
    "10,000-deep nesting": (DEEP, "more than the limit", lambda limit: 5 * limit),
    "Arabic-Indic digit": ("[MAX 2 ٣ ]", "unknown token '٣'", 7),
    "emoji": ("[MAX 2 😀 ]", "unknown token '😀'", 7),
    "zero-width space": ("[MAX 2\u200b9 ]", "unknown token '2\\\\u200b9'", 5),
    "NUL": ("[MAX 2 \x00 ]", "unknown token '\\\\x00'", 7),
    "control characters": ("[MAX 2 \x07\x1b[0m ]", "unknown token '\\\\x07\\\\x1b'", 7),
    "right-to-left override": ("[MAX 2 \u202e9 1 ]", "unknown token '\\\\u202e9'", 7),
    "script tag": ("[MAX 2 <script>alert(1)</script> ]", "unknown token '\\<script\\>alert'", 7),
    "img onerror": ("[MAX <img src=x onerror=alert(1)> 2 ]", "unknown token '\\<img'", 5),
    "markdown": ("[MAX 2 **9** $x$ ]", "unknown token '\\*\\*9\\*\\*'", 7),
}
# Characters that must never reach markdown unescaped (app/figures.py: md_escape).
UNESCAPED = re.compile(r"(?<!\\)([<>*_`$~|&{}@]|://)")


@pytest.fixture(autouse=True)
def environment(tmp_path, monkeypatch) -> Iterator[Path]:
    runs = tmp_path / "runs"
    monkeypatch.setenv(state.MODEL_ENV, "random-small")
    monkeypatch.setenv(jobs.RUNS_ENV, str(runs))
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "2")
    monkeypatch.setenv(jobs.THREADS_ENV, "1")
    yield runs
    kill_workers()  # a failed test leaves no worker behind


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _where(name: str, page: str) -> int:
    where = HOSTILE[name][2]
    return where(200 if page == "training" else 5000) if callable(where) else where


def test_the_hostile_inputs_are_what_they_claim():
    assert len(HUGE) >= 200_000 and len(DEEP) > 70_000
    for limit in (200, 5000):
        at = HOSTILE["200,000 characters"][2](limit)
        assert HUGE[at] == "1" and len(HUGE[:at].split()) == limit  # the first over the limit
        at = HOSTILE["10,000-deep nesting"][2](limit)
        assert DEEP[at] == "[" and len(DEEP[:at].split()) == limit
    for name in ("NUL", "control characters", "right-to-left override", "zero-width space"):
        assert not HOSTILE[name][0].isprintable()


# --------------------------------------------------------------------------------------------
# Every expression box: Explorer, Beam alignment, Depth bounds, Training's "Watch this expression"

PAGES = {
    "explorer": "settings.expression",
    "alignment": "settings.expression",
    "depth": "settings.expression",
    "training": "training.watch",
}


def _session(page: str) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=120)
    at.query_params.update(w="4", k="3")  # VALID is chunked: the alignment page has a picture
    if page != "explorer":
        at.switch_page(f"pages/{page}.py")
    at.run()
    _ok(at)
    return at


def _sentence(at: AppTest, page: str) -> str:
    """The page's one message about the expression (the Depth page warns and goes on)."""
    if page == "depth":
        assert not at.error, [e.value for e in at.error]
        found = [w.value for w in at.warning if "does not parse" in w.value]
    else:
        found = [e.value for e in at.error]
    assert len(found) == 1, found
    return found[0]


def _works(at: AppTest, page: str) -> None:
    """The valid expression was answered: the app still serves this session."""
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    if page == "explorer":
        assert {m.label: m.value for m in at.metric}["Ground truth"] == str(evaluate(VALID))
        assert len(charts) >= 6
    elif page == "alignment":
        keys = {c.key for c in charts}
        assert {"alignment.strategies", "alignment.picture"} <= keys, keys
        assert [m.label for m in at.metric][:1] == ["Chunks C"]
    elif page == "depth":
        assert not any("does not parse" in w.value for w in at.warning)
        assert len(charts) == 2  # the curves, and this expression's runs
    else:
        assert not at.button(key="training.start").disabled
        assert any("Estimated time" in i.value for i in at.info)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_hostile_expressions_get_one_sentence_and_the_app_keeps_serving(page):
    at = _session(page)
    box = PAGES[page]
    for name, (text, what, _) in HOSTILE.items():
        where = _where(name, page)
        at.text_input(key=box).input(text).run()
        _ok(at)
        message = _sentence(at, page)
        assert what in message, (name, message)
        assert f"at character {where}" in message, (name, message)  # where
        assert "\n" not in message and "Traceback" not in message, (name, message)
        assert not UNESCAPED.search(message), (name, message)  # shown as typed, never markup
        if page in ("explorer", "alignment") and where < 50:  # the caret under the character
            line, caret = at.code[0].value.split("\n")
            assert line.isprintable() and caret == " " * where + "^", (name, line, caret)
            if name == "script tag":
                assert "<script>alert(1)</script>" in line  # a code block: literal text
        if page == "explorer":
            assert not at.metric and not at.get("plotly_chart")
        at.text_input(key=box).input(VALID).run()
        _works(at, page)


def test_hostile_text_in_the_url_is_shown_as_text():
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.query_params["expr"] = "[MAX <script>alert(1)</script> ]" + " " * 250_000 + "1"
    at.run()
    _ok(at)
    (error,) = at.error
    assert "\\<script\\>" in error.value and not UNESCAPED.search(error.value)
    at.text_input(key="settings.expression").input(VALID).run()
    _works(at, "explorer")

    for job in ("[click](https://example.com)", "<img src=x onerror=alert(1)>", "x" * 10_000):
        at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
        at.switch_page("pages/training.py")
        at.query_params["job"] = job
        at.run()
        _ok(at)
        (warning,) = [w.value for w in at.warning if "There is no run" in w.value]
        assert not UNESCAPED.search(warning) and len(warning) < 400, warning
        if job.startswith("[click]"):  # neither a markdown link nor a bare address
            assert "'\\[click](https\\://example.com)'" in warning, warning


def test_markdown_escaping_shows_every_character_as_written():
    assert md_escape("a ']' is missing") == "a ']' is missing"
    assert md_escape("unclosed '[MAX' at character 0: a ']' is missing").startswith(
        "unclosed '\\[MAX'"
    )
    assert md_escape("'[FOO' at 9") == "'[FOO' at 9"  # no ] after it: cannot open a link
    assert md_escape("<b>*x*</b> $y$ `z` a_b ~~s~~ |t| &amp; \\") == (
        "\\<b\\>\\*x\\*\\</b\\> \\$y\\$ \\`z\\` a\\_b \\~\\~s\\~\\~ \\|t\\| \\&amp; \\\\"
    )
    assert md_escape("one\nline\r") == "one line "
    assert md_escape("[" * 100_000 + "]").count("\\[") == 100_000  # linear, not quadratic


def test_no_user_text_can_reach_unsafe_html():
    """The only raw HTML the app writes is teacher mode's stylesheet, built from constants, the
    script that scrolls to a section, whose only parameter is one of the section anchors, and
    the script that explains a refused upload, whose parameters are the page's own widget key
    and limit and which writes the file's name as text, never as HTML."""
    raw = []
    for path in sorted((REPO / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            unsafe = any(
                k.arg == "unsafe_allow_html"
                and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                for k in node.keywords
            )
            if unsafe or name.endswith(".html"):  # st.html, components.html
                raw.append((path.relative_to(REPO).as_posix(), ast.unparse(node)))
    assert raw == [
        ("app/teacher.py", "st.html(script, unsafe_allow_javascript=True, width=1)"),
        ("app/teacher.py", "st.html(f'<style>\\n{css()}</style>')"),
        ("app/uploads.py", "st.html(script, unsafe_allow_javascript=True)"),
    ], raw
    from app import teacher, uploads

    assert "innerHTML" not in uploads._SCRIPT and "textContent = text" in uploads._SCRIPT
    callers = [
        ast.unparse(node)
        for path in sorted((REPO / "app").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("refused_notice")
    ]
    assert callers == ["uploads.refused_notice(KEY + 'upload', limit)"], callers

    assert not inspect.signature(teacher.css).parameters
    # The one script (a lesson's section scrolled into view) names only the pages' headings.
    assert set(teacher.SECTIONS) == {"trees", "outer-recursion", "inner-recursion",
                                     "sequential-depth"}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Checkpoints: wrong JSON types, read by rir_core.checkpoint and by the app's upload


def _sidecar_edit(ckpt: Path, edit) -> None:
    data = json.loads((ckpt / SIDECAR_FILE).read_text())
    edit(data)
    (ckpt / SIDECAR_FILE).write_text(json.dumps(data))


# name -> (an edit of the sidecar's JSON, or the text that replaces it; what the sentence says)
WRONG_TYPES = {
    "hidden_size as a string": (
        lambda d: d["model_config"].update(hidden_size="16"),
        "hidden_size must be a whole number, not '16'",
    ),
    "beam_size 7.5": (
        lambda d: d["model_config"].update(beam_size=7.5),
        "beam_size must be a whole number, not 7.5",
    ),
    "alignment 3": (
        lambda d: d["model_config"].update(alignment=3),
        "alignment must be one of sample, rank, random, kbest, not 3",
    ),
    "a list where model_config belongs": (
        lambda d: d.update(model_config=[16, 2]),
        "model_config must be a JSON object, not list",
    ),
    "a list where metadata belongs": (
        lambda d: d.update(metadata=["notes"]),
        "metadata must be a JSON object, not list",
    ),
    "a dict where vocab belongs": (
        lambda d: d.update(vocab={"[MAX": 1}),
        "vocab must be a list, not dict",
    ),
    "use_s4d as a string": (
        lambda d: d["model_config"].update(use_s4d="yes"),
        "use_s4d must be true or false, not 'yes'",
    ),
    "dropout null": (
        lambda d: d["model_config"].update(dropout=None),
        "dropout must be a number, not None",
    ),
    "model_type as a list": (
        lambda d: d["model_config"].update(model_type=["rir_ebt_grc"]),
        "model_type must be one of",
    ),
    "a megabyte string": (
        lambda d: d["model_config"].update(alignment="x" * 2**20),
        "alignment must be one of sample, rank, random, kbest, not 'xxx",
    ),
    "NaN": ('{"format_version": NaN}', "NaN is not a JSON number"),
    "Infinity": (
        lambda d: d["model_config"].update(s4d_dt_max=float("inf")),
        "Infinity is not a JSON number",
    ),
    "a 5,000-digit number": (
        '{"format_version": ' + "9" * 5000 + "}",
        "for integer string conversion",
    ),
    "arrays nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
}


def _apply(ckpt: Path, edit) -> None:
    if isinstance(edit, str):
        (ckpt / SIDECAR_FILE).write_text(edit)
    else:
        _sidecar_edit(ckpt, edit)


@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_a_sidecar_with_wrong_types_gets_one_sentence(tmp_path, environment, name):
    edit, expected = WRONG_TYPES[name]
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    _apply(ckpt, edit)
    with pytest.raises(CheckpointError) as caught:  # a ValueError, never another exception
        load_checkpoint(ckpt)
    message = str(caught.value)
    assert expected in message and str(ckpt / SIDECAR_FILE) in message, message
    assert "\n" not in message and message.endswith(".") and len(message) < 400, message

    files = [(f"my {n}", (ckpt / n).read_bytes()) for n in (WEIGHTS_FILE, SIDECAR_FILE)]
    with pytest.raises(model_store.UploadError) as caught:
        model_store.import_upload(files)
    message = str(caught.value)
    assert message.startswith("Not a usable checkpoint: ") and expected in message, message
    assert f"my {SIDECAR_FILE}" in message and str(environment) not in message, message
    assert "\n" not in message and len(message) < 400, message
    assert not [p for p in (environment / "uploads").iterdir()]  # nothing kept


def test_a_sidecar_asking_for_a_huge_model_allocates_nothing(tmp_path, monkeypatch):
    """Names and shapes are checked on the meta device: a 1 KB sidecar claiming D = 1024 with
    the weights of D = 16 is refused before any real tensor of that size exists."""
    import rir_core.model

    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    fine = tiny_checkpoint(tmp_path / "fine")
    _sidecar_edit(ckpt, lambda d: d["model_config"].update(hidden_size=1024, scorer_hidden=1024))
    devices = []
    real_build = rir_core.model.build_model

    def spy(*args, **kwargs):
        devices.append(torch.empty(0).device.type)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(rir_core.model, "build_model", spy)
    with pytest.raises(CheckpointError, match=r"has shape \(16,"):
        load_checkpoint(ckpt)
    assert devices == ["meta"]
    load_checkpoint(fine)  # a good one still builds for real
    assert devices == ["meta", "meta", "cpu"]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda b: b[: len(b) - 64], "truncated"),
        (lambda b: b[:3], "not a valid safetensors file"),
        (lambda b: pickle.dumps({"w": [1.0]}), "never unpickled"),
    ],
    ids=["truncated", "cut in its header", "pickle"],
)
def test_damaged_weights_through_the_upload(tmp_path, environment, damage, expected):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    weights = damage((ckpt / WEIGHTS_FILE).read_bytes())
    files = [("w.safetensors", weights), ("w.json", (ckpt / SIDECAR_FILE).read_bytes())]
    with pytest.raises(model_store.UploadError, match=expected) as caught:
        model_store.import_upload(files)
    assert "w.safetensors" in str(caught.value) and "\n" not in str(caught.value)


def test_wrong_shapes_through_the_upload(tmp_path, environment):
    small = tiny_checkpoint(tmp_path / "small")
    wide = tiny_checkpoint(tmp_path / "wide", hidden_size=32)
    files = [
        ("wide.safetensors", (small / WEIGHTS_FILE).read_bytes()),
        ("wide.json", (wide / SIDECAR_FILE).read_bytes()),
    ]
    with pytest.raises(model_store.UploadError, match=r"wide.safetensors: tensor .* has shape"):
        model_store.import_upload(files)


def _rendered(markdown: str) -> str:
    """What a reader sees of an escaped message (backslash escapes resolved)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_hostile_uploads_on_the_training_page(tmp_path, environment, monkeypatch):
    """Through the page: each bad upload is one sentence (its file name shown as written), and
    the same session then uploads a good checkpoint."""
    monkeypatch.setenv(model_store.UPLOAD_MAX_ENV, "1")
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    weights, sidecar = ((ckpt / n).read_bytes() for n in (WEIGHTS_FILE, SIDECAR_FILE))
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    typed = sidecar.replace(b'"hidden_size": 16', b'"hidden_size": "16"')
    assert typed != sidecar
    cases = [
        ([("big.zip", b"\0" * (2**20 + 1))], "more than the 1 MB limit"),
        ([("m.safetensors", weights), ("m.json", deep)], "m.json is nested too deeply"),
        ([("m.safetensors", weights), ("m.json", typed)], "hidden_size must be a whole number"),
        ([("<img src=x onerror=alert(1)>.zip", b"PK?")], "<img src=x onerror=alert(1)>.zip"),
        ([("**bold**.safetensors", weights[:100]), ("x.json", sidecar)], "**bold**.safetensors"),
    ]
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.switch_page("pages/training.py").run()
    for files, expected in cases:
        at.get("file_uploader")[0].set_value([(n, d, "application/octet-stream") for n, d in files])
        at.run()
        _ok(at)
        (error,) = [e.value for e in at.error]
        assert expected in _rendered(error), error
        assert "\n" not in error and str(tmp_path) not in error and not UNESCAPED.search(error)
    at.get("file_uploader")[0].set_value(("good.zip", model_store.zip_checkpoint(ckpt), "x"))
    at.run()
    _ok(at)
    assert not at.error and "Uploaded: good-" in at.success[0].value


# --------------------------------------------------------------------------------------------
# Checkpoint paths outside the runs folder, through every entry point that takes one


@pytest.fixture
def outside(tmp_path) -> Path:
    """A valid checkpoint outside RUNS (``_linked_runs`` puts links to it inside)."""
    return tiny_checkpoint(tmp_path / "elsewhere" / "ckpt")


def _linked_runs(runs: Path, outside: Path) -> None:
    (runs / "uploads").mkdir(parents=True)
    (runs / "linked-run").symlink_to(outside.parent, target_is_directory=True)
    (runs / "run-with-linked-best").mkdir()
    (runs / "run-with-linked-best" / "config.json").write_text("{}")
    (runs / "run-with-linked-best" / "best").symlink_to(outside, target_is_directory=True)
    (runs / "run-with-linked-files").mkdir()
    (runs / "run-with-linked-files" / "config.json").write_text("{}")
    (runs / "run-with-linked-files" / "best").mkdir()
    for name in (WEIGHTS_FILE, SIDECAR_FILE):
        (runs / "run-with-linked-files" / "best" / name).symlink_to(outside / name)
    (runs / "uploads" / "linked-upload").symlink_to(outside, target_is_directory=True)


BAD_KEYS = [
    "run:../elsewhere",
    "run:/etc",
    "run:..",
    "upload:../../elsewhere/ckpt",
    "upload:/etc/passwd",
    "upload:..",
    "file:/etc/passwd",
    "/etc/passwd",
    "../elsewhere/ckpt",
    "run:linked-run",
    "run:run-with-linked-best",
    "run:run-with-linked-files",
    "upload:linked-upload",
    "run:\x00",
    "run:" + "x" * 10_000,
]


def test_checkpoint_keys_outside_the_runs_folder_are_refused(environment, outside):
    _linked_runs(environment, outside)
    inside = tiny_checkpoint(environment / "real-run" / "best")
    (environment / "real-run" / "config.json").write_text("{}")
    assert model_store.resolve("run:real-run") == inside.resolve()
    for key in BAD_KEYS:
        with pytest.raises(KeyError):
            model_store.resolve(key)
    keys = [o.key for o in model_store.options("Default")]
    assert keys == ["", "run:real-run"], keys


@pytest.mark.parametrize("key", ["upload:../../elsewhere/ckpt", "run:run-with-linked-best"])
def test_a_url_naming_a_checkpoint_outside_falls_back_to_the_default(environment, outside, key):
    _linked_runs(environment, outside)
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.query_params["model"] = key
    at.run()
    _ok(at)
    assert at.session_state[state.MODEL_STORE] == ""
    assert any("untrained (random weights)" in w.value for w in at.warning)  # the default
    assert not any(str(outside) in c.value for c in at.caption)
    assert at.selectbox(key="model.choice").value == ""


@pytest.mark.parametrize(
    "names",
    [
        ["../../escape.zip"],
        ["/etc/cron.d/escape.zip"],
        ["..\\..\\escape.safetensors", "..\\..\\escape.json"],
        ["/tmp/escape.safetensors", "../escape.json"],
        ["\x00.zip"],
    ],
)
def test_upload_names_never_leave_the_uploads_folder(tmp_path, environment, names):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    if len(names) == 1:
        files = [(names[0], model_store.zip_checkpoint(ckpt))]
    else:
        which = {".safetensors": WEIGHTS_FILE, ".json": SIDECAR_FILE}
        files = [(n, (ckpt / which[Path(n).suffix]).read_bytes()) for n in names]
    before = sorted(p.name for p in tmp_path.iterdir())
    option = model_store.import_upload(files)
    assert option.path.parent == environment / "uploads"
    assert model_store.NAME.match(option.path.name) and ".." not in option.path.name
    assert model_store.resolve(option.key) == option.path.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*before, "runs"})


def test_two_identical_uploads_at_the_same_moment(tmp_path, environment, monkeypatch):
    """The other session keeps the same files between this one's check and its rename."""
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    files = [(n, (ckpt / n).read_bytes()) for n in (WEIGHTS_FILE, SIDECAR_FILE)]
    real_replace = os.replace

    def the_other_session_wins(src, dst):
        if Path(dst).parent.name == "uploads" and not Path(dst).exists():
            shutil.copytree(src, dst)  # their copy lands first
        return real_replace(src, dst)

    monkeypatch.setattr(model_store.os, "replace", the_other_session_wins)
    option = model_store.import_upload(files)
    load_checkpoint(option.path)
    assert [p.name for p in (environment / "uploads").iterdir()] == [option.path.name]


# --------------------------------------------------------------------------------------------
# Nothing lost: a worker killed with SIGKILL resumes from its last checkpoint


def _events(job_dir: Path, kind: str) -> list[dict]:
    found = []
    for line in (job_dir / "log.jsonl").read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:  # a line cut by the kill (never seen, but not this test's point)
            continue
        if event.get("event") == kind:
            found.append(event)
    return found


def _raw_steps(job_dir: Path) -> list[int]:
    return [e["step"] for e in _events(job_dir, "step")]


def _saved_step(job_dir: Path) -> int:
    from rir_core.checkpoint import load_resume_state

    return int(load_resume_state(job_dir / "last")["step"])


def _saved_step_now(job_dir: Path) -> int | None:
    """The step of ``last/`` read without the checkpoint lock (the worker may be frozen while
    it holds it); None between a save's two renames."""
    try:
        return json.loads((job_dir / "last" / "resume.json").read_text())["state"]["step"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
def test_a_worker_killed_with_sigkill_resumes_from_its_last_checkpoint(environment):
    max_steps = 40
    job = jobs.start_job(tiny_settings(eval_every=10, max_steps=max_steps), owner="me")
    worker = job.pid
    # Freeze the worker (SIGSTOP) at a moment when it has logged steps after its last
    # checkpoint, then kill it outright: no handler runs, nothing is saved on the way out.
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, (job.dir / "worker.log").read_text()
        time.sleep(0.1)
        if not (job.dir / "last" / "resume.json").is_file():
            continue
        os.kill(worker, signal.SIGSTOP)
        steps, at = _raw_steps(job.dir), _saved_step_now(job.dir)
        if steps and at is not None and at < steps[-1] < max_steps - 5:
            break
        os.kill(worker, signal.SIGCONT)
    os.kill(worker, signal.SIGKILL)
    jobs.wait_for(job.id, lambda j: not j.active, timeout_s=30)  # dead, its flock released
    saved, logged = _saved_step(job.dir), steps[-1]
    assert 10 <= saved == at < logged < max_steps

    dead = jobs.get_job(job.id)
    assert dead.status == "failed" and dead.resumable, dead
    assert dead.error.endswith(".") and "ended unexpectedly" in dead.error
    assert "Traceback" not in dead.error and "\n" not in dead.error

    jobs.resume_job(job.id, owner="me")
    done = jobs.wait_for(job.id, lambda j: not j.active, timeout_s=180)
    assert done.status == "finished", (done, (job.dir / "worker.log").read_text())
    assert done.result["step"] == max_steps
    starts = _events(job.dir, "start")
    assert [s["resumed_from"] for s in starts] == [None, saved]  # not from step 0
    raw = _raw_steps(job.dir)
    assert raw == list(range(1, logged + 1)) + list(range(saved + 1, max_steps + 1))
    log = run_log.read_log(job.dir / "log.jsonl")  # what the page shows: each step once
    assert [s["step"] for s in log.steps] == list(range(1, max_steps + 1))
    assert [e["step"] for e in log.evals] == [10, 20, 30, 40]
    assert log.invocations == 2 and log.end["status"] == "max_steps"


def test_the_log_reader_replaces_the_steps_a_killed_run_redid(tmp_path):
    events = [{"event": "start", "resumed_from": None}]
    events += [{"event": "step", "step": i, "elapsed_s": i} for i in range(1, 8)]
    events += [{"event": "eval", "step": 5}, {"event": "start", "resumed_from": 5}]
    events += [{"event": "step", "step": i, "elapsed_s": i + 0.5} for i in range(6, 10)]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    log = run_log.read_log(tmp_path / "log.jsonl")
    assert [s["step"] for s in log.steps] == list(range(1, 10))
    assert [s["elapsed_s"] for s in log.steps][5:] == [6.5, 7.5, 8.5, 9.5]  # the resumed run's
    assert [e["step"] for e in log.evals] == [5] and log.elapsed_before == 5


# --------------------------------------------------------------------------------------------
# Nothing lost: two jobs, two saves at the same moment


def test_two_jobs_started_in_the_same_second_get_their_own_folders(environment, monkeypatch):
    ids = iter(["20240101-000000-aaaa", "20240101-000000-aaaa", "20240101-000000-bbbb"])
    monkeypatch.setattr(jobs, "_new_id", lambda: next(ids))
    monkeypatch.setattr(jobs, "_spawn", lambda job_dir, extra: 0)  # no worker
    first = jobs.start_job(tiny_settings(hidden_size=16), owner="alice")
    second = jobs.start_job(tiny_settings(hidden_size=32), owner="bob")
    assert (first.id, second.id) == ("20240101-000000-aaaa", "20240101-000000-bbbb")
    record = json.loads((first.dir / "job.json").read_text())
    assert record["owner"] == "alice" and record["settings"]["hidden_size"] == 16


def test_jobs_started_at_once_from_many_sessions_never_share_a_folder(environment, monkeypatch):
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "8")
    monkeypatch.setattr(jobs, "_spawn", lambda job_dir, extra: 0)
    started, errors = [], []

    def start(owner: str) -> None:
        try:
            started.append(jobs.start_job(tiny_settings(), owner=owner))
        except Exception as err:  # collected, asserted below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(f"s{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len({j.id for j in started}) == 8
    owners = {json.loads((j.dir / "job.json").read_text())["owner"] for j in started}
    assert owners == {f"s{i}" for i in range(8)}


def _model(seed: int):
    from rir_core.model import build_model

    torch.manual_seed(seed)
    return build_model(hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8).eval()


def _race(target_of, n_threads: int = 4, saves: int = 4) -> list[BaseException]:
    errors: list[BaseException] = []
    models = [_model(i) for i in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    def save(i: int) -> None:
        try:
            barrier.wait()
            for j in range(saves):
                save_checkpoint(
                    target_of(i),
                    models[i],
                    {"notes": f"{i}.{j}"},
                    resume_state={"step": j, "m": torch.full((4,), float(i))},
                )
        except BaseException as err:  # collected, asserted by the caller
            errors.append(err)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_saves_into_different_runs_at_once_keep_each_its_own(tmp_path):
    assert _race(lambda i: tmp_path / f"run{i}" / "last") == []
    for i in range(4):
        model, info = load_checkpoint(tmp_path / f"run{i}" / "last")
        assert info.metadata["notes"] == f"{i}.3"
        for name, tensor in _model(i).state_dict().items():
            assert torch.equal(model.state_dict()[name], tensor)


def test_saves_racing_on_one_folder_leave_a_whole_checkpoint(tmp_path):
    target = tmp_path / "run" / "last"
    assert _race(lambda i: target) == []
    _, info = load_checkpoint(target)
    i, j = map(int, info.metadata["notes"].split("."))
    assert j == 3 and checkpoint_info(target).has_resume
    from rir_core.checkpoint import load_resume_state

    assert torch.equal(load_resume_state(target)["m"], torch.full((4,), float(i)))  # one save's
    assert sorted(p.name for p in target.parent.iterdir()) == ["last"]  # no temp left behind


SAVER = """
import sys, torch
from rir_core.checkpoint import save_checkpoint
from rir_core.model import build_model
torch.manual_seed(int(sys.argv[2]))
model = build_model(hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8)
for j in range(6):
    save_checkpoint(sys.argv[1], model, {"notes": sys.argv[2]}, resume_state={"step": j})
"""


@pytest.mark.slow
def test_processes_saving_into_one_folder_while_it_is_read(tmp_path):
    target = tmp_path / "run" / "last"
    save_checkpoint(target, _model(9), {"notes": "first"})
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen([sys.executable, "-c", SAVER, str(target), str(i)], env=env, cwd=REPO,
                         stderr=subprocess.PIPE)
        for i in (1, 2)
    ]  # fmt: skip
    reads = 0
    while any(p.poll() is None for p in procs):  # a reader never sees half a checkpoint
        assert checkpoint_info(target).metadata["notes"] in ("first", "1", "2")
        reads += 1
    for p in procs:
        assert p.wait() == 0, p.stderr.read().decode()
    _, info = load_checkpoint(target)
    assert info.metadata["notes"] in ("1", "2") and reads > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["last"]
