"""Every command and code block in the docs runs or is checked: README.md and docs/*.md.

- ```python blocks run, as written (but for SNIPPET_EDITS below), in a fresh interpreter.
- ```bash blocks are split into commands (`&&`, line continuations; `# comments` dropped).
  Each command either RUNS, made small by the rules below, or, where running it would take
  minutes, a network, several processes or GPUs, is CHECKED: its program answers `--help` and
  knows every flag the docs give it, and a command of ours (`python -m rir_core.X`, `python
  tests/X.py`, the module under `torchrun`) must get its arguments through its real argparse
  parser (its `main` runs up to `parse_args` and stops there). A command that no rule covers
  fails the test: add a rule. Fences indented inside a list item count too.
- Commands written inline in a sentence (a `code span` that starts with one of INLINE_PROGRAMS,
  possibly after `NAME=value` settings) are not run: each is checked as above, and one that
  would run in a block instead gets its arguments through the real parser. A span that only
  names a program (`torchrun`, `pip install`, `python -m rir_core.trace`) must answer `--help`.
- `NAME=value` settings before a checked command must name a variable the project reads.

Everything runs in a scratch folder (so `runs/...` in a command never touches the repository's
runs), with the repository on PYTHONPATH and `pretrained/` linked in. The commands of one block
run one after another in one interpreter (`runpy`, as `python -m` does), which saves the
seconds of importing torch for each.

How commands are made small (the rules `plan` applies):

- `python -m rir_core.train`, a new run: append SMALL_TRAIN (1 step on 24 examples, a dev
  evaluation of 8, both checkpoints); with `--resume`: append `--max-steps 2` (one more step).
- `--device cuda` becomes `--device cpu` and `--amp` is dropped, unless CUDA is there.
- `runs/NAME` (a placeholder) becomes `runs/doc-run`, a 1-step run the test trains first;
  `pretrained/rir_ebt_grc` becomes `runs/doc-run/best` while no model is shipped.
- `python -m rir_core.evaluate --splits ...`: `--limit 1` (appended, or instead of the docs').
- `python -m rir_core.trace` without `--checkpoint`: `--checkpoint runs/doc-run/best` while no
  model is shipped.
- `a.tsv`, `b.tsv` (placeholders) are written by the test: 3 generated examples each.

Checked, not run (see CHECKED_COMMANDS): `pip install` (network; instead every pinned
requirement must be installed at its pinned version), `streamlit run` (a server that runs until
stopped; the browser tests start exactly this command, AppTest runs the same script), `python
-m pytest` (the suite itself), `torchrun` (several processes or machines; tests/test_ddp.py runs
2 gloo ranks), `python tests/screenshots.py` (a server and Chromium for a minute),
`python -m rir_core.bench` (minutes), `python -m rir_core.bench_data` (10-20 s of CPU),
`python tests/load_classroom.py` (a server and 30 sessions for minutes; tests/test_load.py runs
its short mode), `python tests/measure_speed.py` (a timing in Chromium for a minute or two),
`python tests/measure_steps.py` (a timing, about a minute of CPU), `python
tests/measure_page_loads.py` (every page's first load in Chromium, minutes), `python
tests/probe_chunk_roots.py` (a measurement, a minute or two of CPU), `python
tests/aux_chunk_loss.py`, `python tests/aux_s4d_context.py` and `python
tests/whole_distill.py` (experiments, tens of minutes),
`python tests/measure_classroom.py`
(a preset's whole training run, minutes), `python tests/cut_report.py`, `python
tests/root_report.py`, `python tests/probe_cut_values.py` (measurements, minutes), `python
tests/make_cut_lessons.py` (writes a training file, a minute or two), `python
tests/grad_per_level.py` (seconds), `python
tests/composition_depth.py` (a measurement over the standard splits, a minute or two), `python
tests/compare_runs.py` (reads two logs; tests/test_compare_runs.py runs it), `python
tests/probe_pair_roots.py` (a measurement, about ten minutes of CPU), `python
tests/sdepth_report.py`, `python tests/partial_tree_report.py` and `python
tests/near_iid_report.py` (measurements, a minute or two of CPU), `python
tests/authors_run_figure.py` (draws a figure in seconds), `python
tests/authors_training.py` (an experiment: a training run, hours),
`python tests/authors_code.py` (prepares a checkout of the authors' code outside the repo and
evaluates its checkpoints),
`apt-get install` (root and a network: the package must be the one `.ci/run` installs),
`ruff` (lint; `.ci/run` runs it), `.ci/run` (the whole CI: it must be an executable file),
`kill -SIG` (the signal must be one the trainer handles).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# 1 step of a batch of 8 from 24 examples (3 batches), a dev evaluation of 8 after it, and both
# checkpoints; a resume adds one more step (RESUME_STEPS), still inside the first epoch. (Resuming
# from a checkpoint saved on an epoch's last batch works too since the epoch-boundary fix in
# Trainer.fit; the size is simply small.)
SMALL_TRAIN = [
    *("--max-steps", "1", "--train-n", "24", "--dev-n", "8", "--batch-size", "8"),
    *("--eval-batch-size", "8", "--eval-every", "1", "--no-progress"),
]
RESUME_STEPS = ["--max-steps", "2"]
DOC_RUN = "runs/doc-run"
EVAL_LIMIT = "1"
BLOCK_TIMEOUT_S = 280

# Python blocks: (file, text in the docs, what runs instead, why).
SNIPPET_EDITS = [
    (
        "docs/training.md",
        'train_overrides={"epochs": 2, "eval_every": 50},',
        'train_overrides={"epochs": 2, "eval_every": 1, "max_steps": 1, "batch_size": 8, '
        '"eval_batch_size": 8},',
        "1 step of 8 examples instead of 2 epochs",
    ),
    (
        "docs/training.md",
        'data_overrides={"train_n": 1000},',
        'data_overrides={"train_n": 16, "dev_n": 8},',
        "16 training and 8 dev examples",
    ),
]

# Commands checked instead of run: program -> why.
CHECKED_COMMANDS = {
    "pip": "installs from the network; instead every pinned requirement must be installed",
    "streamlit": "a server that runs until stopped; tests/browser.py starts this very command",
    "pytest": "the test suite itself",
    "torchrun": "several processes, GPUs or machines; tests/test_ddp.py runs 2 gloo ranks",
    "tests/screenshots.py": "starts the app and Chromium for a minute; same harness as the "
    "browser tests",
    "tests/alignment_screenshots.py": "starts the app with the shipped model and Chromium for a "
    "minute; tests/test_browser_alignment_lesson.py drives the same session",
    "rir_core.bench": "takes minutes",
    "rir_core.bench_data": "10-20 s of CPU: a timing, not a check",
    "tests/load_classroom.py": "30 sessions for minutes; tests/test_load.py runs its --short mode",
    "tests/measure_speed.py": "a timing in a real browser for a minute or two; the browser tests "
    "use the same harness",
    "tests/measure_steps.py": "a timing: about a minute of CPU (EBT-GRC on 1,000 tokens, 16 times)",
    "tests/measure_page_loads.py": "a timing in a real browser for minutes (40 page loads); the "
    "browser tests use the same harness",
    "tests/probe_chunk_roots.py": "a measurement: a minute or two of CPU (1,200 expressions, "
    "probes trained on their chunk roots)",
    "tests/aux_chunk_loss.py": "an experiment: hundreds of training steps, tens of minutes",
    "tests/whole_distill.py": "an experiment: hundreds of training steps, tens of minutes; "
    "tests/test_whole_distill.py checks its targets and a two-step run",
    "tests/aux_s4d_context.py": "an experiment: thousands of training steps, tens of minutes; "
    "tests/test_aux_s4d_context.py checks its targets and a two-step run",
    "tests/cut_report.py": "a measurement: minutes of CPU (4,000 two-chunk inputs, chunked and "
    "whole); tests/test_cut_report.py checks its grouping",
    "tests/compare_runs.py": "reads two training logs in seconds; tests/test_compare_runs.py "
    "runs it on logs it writes and checks its table",
    "tests/probe_pair_roots.py": "a measurement: about ten minutes of CPU (40,000 two-chunk "
    "inputs, then fits on their roots); tests/test_probe_pair_roots.py checks its roots and fits",
    "tests/root_report.py": "a measurement: minutes of CPU (hundreds of long inputs at each "
    "width); tests/test_root_report.py checks its grouping, its widths and its S4D cut",
    "tests/probe_cut_values.py": "a measurement: minutes of CPU (up to 6,000 inputs, probes on "
    "their chunk roots); tests/test_cut_report.py checks its split of the arguments",
    "tests/make_cut_lessons.py": "writes a training file from 120,000 generated expressions (a "
    "minute or two); tests/test_cut_report.py checks which cuts it keeps",
    "tests/sdepth_report.py": "a measurement: a minute or two of CPU (2,000 inputs, chunked and "
    "whole); tests/test_sdepth_report.py checks its sensitivity depth",
    "tests/near_iid_report.py": "a measurement: a minute or two of CPU the first time (it "
    "generates test_iid); tests/test_near_iid_report.py runs it on a small split",
    "tests/authors_run_figure.py": "draws a figure from a JSON-lines file in seconds; "
    "tests/test_authors_run_figure.py runs it",
    "tests/partial_tree_report.py": "a measurement: a minute or two of CPU (1,000 traced "
    "inputs); tests/test_partial_tree_report.py checks the spans it looks for",
    "tests/authors_training.py": "an experiment: a training run from scratch, hours; "
    "tests/test_authors_training.py checks each behaviour it switches on",
    "tests/authors_code.py": "prepares a checkout of the authors' code (outside the repo) and "
    "evaluates its checkpoints; tests/test_authors_code.py checks its data files and edits",
    "tests/grad_per_level.py": "a measurement: one forward and backward on 4 batches (seconds)",
    "tests/composition_depth.py": "a measurement: pure Python over 1,000 examples of each "
    "standard split (a minute or two); tests/test_composition_depth.py checks its parts",
    "tests/measure_classroom.py": "a measurement: a preset's whole training run, minutes of CPU; "
    "tests/test_jobs.py starts jobs the same way",
    "apt-get": "needs root and a network; the package must be the one .ci/run installs",
    "ruff": "the linter; .ci/run runs it",
    ".ci/run": "the whole CI run (a fresh environment, Chromium, the full suite)",
    "kill": "signals a running process; the trainer must handle that signal",
}
RUN_MODULES = {"rir_core.train", "rir_core.evaluate", "rir_core.trace", "rir_core.generate"}
# Programs whose inline `code spans` in prose are commands (see the docstring).
INLINE_PROGRAMS = ("python", "streamlit", "torchrun", "pip", "apt-get", "ruff", "kill", ".ci/run")


# --------------------------------------------------------------------------------------------
# Reading the docs


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


# A fence may be indented (inside a list item); its closing fence has the same indentation.
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```[ \t]*$", re.S | re.M)


def read_blocks(lang: str) -> list[Block]:
    out = []
    for path in DOC_FILES:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if m.group(2) == lang:
                line = text.count("\n", 0, m.start()) + 1
                out.append(Block(path, line, lang, textwrap.dedent(m.group(3))))
    return out


@dataclass(frozen=True)
class Inline:
    """A command written inline in a sentence: a `code span` outside the fenced blocks."""

    path: Path
    line: int
    tokens: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")


def read_inline_commands() -> list[Inline]:
    out = []
    for path in DOC_FILES:
        # Blank out the fenced blocks, keeping their lines so that line numbers stay right.
        text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text())
        for m in SPAN.finditer(text):
            try:
                tokens = shlex.split(m.group(1).replace("\n", " "))
            except ValueError:  # unbalanced quotes: not a command
                continue
            rest = _without_env(tokens)[1]
            if rest and rest[0] in INLINE_PROGRAMS:
                line = text.count("\n", 0, m.start()) + 1
                out.append(Inline(path, line, tuple(tokens)))
    return out


def commands(script: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments dropped, `&&` split."""
    joined = re.sub(r"\\\n", " ", script)
    out: list[list[str]] = []
    for line in joined.splitlines():
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        for token in tokens + ["&&"]:
            if token == "&&":
                if current:
                    out.append(current)
                current = []
            else:
                current.append(token)
    return out


# --------------------------------------------------------------------------------------------
# Plans: what the test does with one command


@dataclass
class Plan:
    kind: str  # "run" (a python module, in the block's interpreter) or "check"
    argv: list[str]  # run: [module, args...]; check: the command as the docs write it
    why: str = ""


def _pretrained() -> bool:
    from rir_core.pretrained import pretrained_available

    return pretrained_available()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _substitute(args: list[str]) -> list[str]:
    out = []
    for a in args:
        if a == "runs/NAME" or a.startswith("runs/NAME/"):
            a = DOC_RUN + a[len("runs/NAME") :]
        if a.rstrip("/") == "pretrained/rir_ebt_grc" and not _pretrained():
            a = f"{DOC_RUN}/best"
        out.append(a)
    if not _cuda():
        out = ["cpu" if a == "cuda" and i and out[i - 1] == "--device" else a
               for i, a in enumerate(out)]  # fmt: skip
        out = [a for a in out if a != "--amp"]
    return out


ENV_SETTING = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _without_env(tokens: list[str]) -> tuple[list[str], list[str]]:
    """``NAME=value`` settings before a command, and the command."""
    n = 0
    while n < len(tokens) and ENV_SETTING.match(tokens[n]):
        n += 1
    return [t.split("=")[0] for t in tokens[:n]], list(tokens[n:])


@functools.cache
def _project_source() -> str:
    """The project's Python source (app, rir_core, tests but this file): where settings are read."""
    files = [*REPO.glob("app/**/*.py"), *REPO.glob("rir_core/*.py"), *REPO.glob("tests/*.py")]
    return "\n".join(f.read_text() for f in files if f.name != Path(__file__).name)


def plan(tokens: list[str]) -> Plan:
    env, tokens = _without_env(tokens)
    unknown = [name for name in env if name not in _project_source()]
    assert not unknown, f"the project reads no environment variable {unknown}"
    prog = tokens[0]
    if prog in ("pip", "streamlit", "torchrun", "apt-get", "ruff", "kill", ".ci/run"):
        return Plan("check", tokens, CHECKED_COMMANDS[prog])
    if prog == "python" and len(tokens) > 1 and tokens[1] in CHECKED_COMMANDS:
        return Plan("check", tokens, CHECKED_COMMANDS[tokens[1]])
    if prog == "python" and len(tokens) > 2 and tokens[1] == "-m":
        module, args = tokens[2], _substitute(tokens[3:])
        if module in CHECKED_COMMANDS:
            return Plan("check", tokens, CHECKED_COMMANDS[module])
        if env:
            raise AssertionError(f"no rule for settings before a run: {shlex.join(tokens)!r}")
        if module not in RUN_MODULES:
            raise AssertionError(f"no rule for {shlex.join(tokens)!r}: add one to test_docs.py")
        if module == "rir_core.train":
            args += RESUME_STEPS if "--resume" in args else SMALL_TRAIN
        elif module == "rir_core.evaluate" and "--splits" in args:
            if "--limit" in args:
                args[args.index("--limit") + 1] = EVAL_LIMIT
            else:
                args += ["--limit", EVAL_LIMIT]
        elif module == "rir_core.trace" and "--checkpoint" not in args and not _pretrained():
            args += ["--checkpoint", f"{DOC_RUN}/best"]
        return Plan("run", [module, *args])
    raise AssertionError(f"no rule for {shlex.join(tokens)!r}: add one to tests/test_docs.py")


# --------------------------------------------------------------------------------------------
# Running


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.pop("RIR_APP_MODEL", None)
    return env


RUNNER = r"""
import json, runpy, sys, time, traceback, warnings
warnings.filterwarnings("ignore", message=".*found in sys.modules.*", category=RuntimeWarning)
results = []
for argv in json.loads(sys.argv[1]):
    print("@@@ python -m " + " ".join(argv), flush=True)
    sys.argv = [argv[0]] + argv[1:]
    start, code = time.monotonic(), 0
    try:
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    results.append({"argv": argv, "code": code, "s": round(time.monotonic() - start, 1)})
    sys.stdout.flush(); sys.stderr.flush()
    if code:
        break
print("@@RESULTS@@" + json.dumps(results), flush=True)
"""


def _python(code: str, payload: object, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """``python -c CODE JSON(payload)`` in ``cwd`` with the docs' environment, output captured."""
    return subprocess.run(
        [sys.executable, "-c", code, json.dumps(payload)],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_modules(runs: list[list[str]], cwd: Path) -> str:
    """Run ``python -m MODULE ARGS`` for each entry in one interpreter; fail on the first
    non-zero exit with the output."""
    proc = _python(RUNNER, runs, cwd, BLOCK_TIMEOUT_S)
    marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULTS@@")]
    results = json.loads(marker[-1][len("@@RESULTS@@") :]) if marker else []
    tail = (proc.stdout + "\n" + proc.stderr)[-6000:]
    assert proc.returncode == 0 and len(results) == len(runs), tail
    failed = [r for r in results if r["code"] != 0]
    assert not failed, (
        f"python -m {' '.join(failed[0]['argv'])} exited {failed[0]['code']}:\n{tail}"
    )
    return proc.stdout


@functools.cache
def help_text(*program: str) -> str:
    proc = subprocess.run(
        [sys.executable, *program, "--help"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{' '.join(program)} --help failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def _flags(tokens: list[str]) -> list[str]:
    return [t.split("=")[0] for t in tokens if t.startswith("--")]


def _assert_knows(help_out: str, flags: list[str], what: str) -> None:
    missing = [f for f in flags if f not in help_out]
    assert not missing, f"{what} --help does not mention {missing}"


# Runs a command's ``main(argv)`` only until its argparse parser has parsed argv: the real
# parser checks every flag, type, choice and required argument, and nothing else runs.
PARSE_RUNNER = r"""
import argparse, contextlib, importlib, io, json, runpy, sys
class Parsed(Exception):
    pass
real = argparse.ArgumentParser.parse_args
def parse_only(self, args=None, namespace=None):
    real(self, args, namespace)
    raise Parsed
argparse.ArgumentParser.parse_args = parse_only
problems = []
for target, argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if target.endswith(".py"):
                main = runpy.run_path(target, run_name="__docs__")["main"]
            else:
                main = importlib.import_module(target).main
            main(argv)
        problems.append("main() returned without parsing its arguments")
    except Parsed:
        problems.append("")
    except SystemExit as exc:
        last = (err.getvalue().strip().splitlines() or [""])[-1]  # argparse's "error: ..."
        problems.append(f"its parser exits {exc.code}: {last[-800:]}")
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
print("@@PARSED@@" + json.dumps(problems), flush=True)
"""


def parse_with_real_parsers(requests: list[tuple[str, list[str]]]) -> None:
    """Each ``(module or script, argv)`` must get through its command's own argparse parser."""
    if not requests:
        return
    proc = _python(PARSE_RUNNER, requests, REPO, 120)
    marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@PARSED@@")]
    assert marker, (proc.stdout + proc.stderr)[-3000:]
    problems = json.loads(marker[-1][len("@@PARSED@@") :])
    bad = [
        f"{target} {shlex.join(argv)}: {problem}"
        for (target, argv), problem in zip(requests, problems, strict=True)
        if problem
    ]
    assert not bad, "\n".join(bad)


def _ours(target: str) -> bool:
    """A command of this project, with an argparse ``main(argv)``."""
    return target.startswith("rir_core.") or bool(re.fullmatch(r"tests/\w+\.py", target))


def check(tokens: list[str]) -> list[tuple[str, list[str]]]:
    """The checks of a command that is not run (see CHECKED_COMMANDS). Returns what must also
    get through its real parser (see :func:`parse_with_real_parsers`)."""
    prog = tokens[0]
    if prog == "torchrun" and "-m" not in tokens:  # torchrun [flags] tests/X.py [args]
        s = next(i for i, t in enumerate(tokens) if t.endswith(".py"))
        _assert_knows(help_text("-m", "torch.distributed.run"), _flags(tokens[1:s]), "torchrun")
        assert tokens[s] in CHECKED_COMMANDS, f"{tokens[s]} is not a checked command"
        prog, tokens = "python", ["python", *tokens[s:]]  # then checked as python runs it
    if prog == "pip":
        files = [tokens[i + 1] for i, t in enumerate(tokens) if t == "-r"]
        assert files, f"pip without -r: {shlex.join(tokens)}"
        for name in files:
            for line in (REPO / name).read_text().splitlines():
                line = line.split("#")[0].strip()
                if not line:
                    continue
                package, _, version = line.partition("==")
                assert version, f"{name}: {line!r} is not pinned"
                installed = metadata.version(package)
                # A local build tag (torch's +cpu / +cu128) is the same release.
                assert installed.split("+")[0] == version, f"{package} {installed} != {version}"
    elif prog == "streamlit":
        assert tokens[1] == "run" and (REPO / tokens[2]).is_file(), shlex.join(tokens)
        _assert_knows(help_text("-m", "streamlit", "run"), _flags(tokens[3:]), "streamlit run")
    elif prog == "torchrun":
        m = tokens.index("-m")
        _assert_knows(help_text("-m", "torch.distributed.run"), _flags(tokens[1:m]), "torchrun")
        module = tokens[m + 1]
        _assert_knows(help_text("-m", module), _flags(tokens[m + 2 :]), module)
        return [(module, tokens[m + 2 :])] if _ours(module) else []
    elif prog == "apt-get":
        ci = (REPO / ".ci" / "run").read_text()
        assert tokens[1] == "install", shlex.join(tokens)
        installed = {t for ln in ci.splitlines() if "apt-get install" in ln for t in ln.split()}
        packages = [t for t in tokens[2:] if not t.startswith("-")]
        assert packages and set(packages) <= installed, f".ci/run does not install {packages}"
    elif prog == "ruff":
        _assert_knows(help_text("-m", "ruff", tokens[1]), _flags(tokens[2:]), f"ruff {tokens[1]}")
    elif prog == ".ci/run":
        assert len(tokens) == 1 and os.access(REPO / ".ci" / "run", os.X_OK), shlex.join(tokens)
    elif prog == "kill":
        signals = [t[1:] for t in tokens[1:] if t.startswith("-")] or ["TERM"]
        handled = (REPO / "rir_core" / "train.py").read_text()
        for name in signals:
            assert f"signal.SIG{name}" in handled, f"the trainer does not handle SIG{name}"
    elif tokens[1] in CHECKED_COMMANDS:  # a script: tests/screenshots.py, tests/load_classroom.py
        _assert_knows(help_text(tokens[1]), _flags(tokens[2:]), tokens[1])
        return [(tokens[1], tokens[2:])]
    else:  # python -m pytest / rir_core.bench / rir_core.bench_data
        _assert_knows(help_text("-m", tokens[2]), _flags(tokens[3:]), tokens[2])
        return [(tokens[2], tokens[3:])] if _ours(tokens[2]) else []
    return []


def help_of_a_name(tokens: list[str]) -> tuple[str, ...] | None:
    """The ``--help`` call of a span that only names a program (``torchrun``, ``pip install``,
    ``python -m MODULE``), or None for a command with arguments."""
    if tokens == ["torchrun"]:
        return ("-m", "torch.distributed.run")
    if tokens in (["pip", "install"], ["streamlit", "run"]):
        return ("-m", *tokens)
    if len(tokens) == 3 and tokens[:2] == ["python", "-m"]:
        return ("-m", tokens[2])
    return None


def check_inline(command: Inline) -> list[tuple[str, list[str]]]:
    """The checks of an inline command; returns what must get through its real parser."""
    _env_names, tokens = _without_env(list(command.tokens))
    program = help_of_a_name(tokens)
    if program is not None:
        help_text(*program)
        return []
    p = plan(list(command.tokens))
    if p.kind == "check":
        return check(p.argv)
    return [(tokens[2], tokens[3:])]  # python -m MODULE ARGS: parsed, not run


# --------------------------------------------------------------------------------------------
# The scratch folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    from rir_core.generate import Recipe, generate

    root = tmp_path_factory.mktemp("docs")
    (root / "pretrained").symlink_to(REPO / "pretrained")
    for name, seed in (("a.tsv", 1), ("b.tsv", 2)):
        rows = [f"{ex.label}\t{ex.text}" for ex in generate(Recipe(5, 30), 3, seed=seed)]
        (root / name).write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def doc_run(workspace: Path) -> Path:
    """``runs/doc-run``: what the docs call ``runs/NAME`` (a 2-step classroom run)."""
    run_modules(
        [["rir_core.train", "--preset", "classroom", "--out", DOC_RUN, *SMALL_TRAIN]], workspace
    )
    assert (workspace / DOC_RUN / "best" / "model.json").is_file()
    return workspace / DOC_RUN


# --------------------------------------------------------------------------------------------
# The tests

BASH = read_blocks("bash")
PYTHON = read_blocks("python")


def _params(blocks: list[Block], heavy: tuple[str, ...]) -> list:
    """One test per block; those that train or evaluate models are marked slow."""
    slow = pytest.mark.slow
    return [
        pytest.param(b, id=b.id, marks=[slow] if any(h in b.text for h in heavy) else [])
        for b in blocks
    ]


def test_the_docs_have_code():
    assert len(BASH) >= 8 and len(PYTHON) >= 3
    for path in (REPO / "docs" / "teachers_guide.md", REPO / "docs" / "architecture.md"):
        assert any(b.path == path for b in PYTHON), path


@pytest.mark.parametrize("block", _params(BASH, ("rir_core.train", "rir_core.evaluate")))
def test_bash_block(block: Block, request):
    plans = [plan(tokens) for tokens in commands(block.text)]
    assert plans, f"{block.id}: an empty bash block"
    parse_with_real_parsers([req for p in plans if p.kind == "check" for req in check(p.argv)])
    runs = [p.argv for p in plans if p.kind == "run"]
    if not runs:
        return
    workspace = request.getfixturevalue("workspace")
    if any(DOC_RUN in a for argv in runs for a in argv):
        request.getfixturevalue("doc_run")
    run_modules(runs, workspace)


INLINE = read_inline_commands()


def test_inline_commands_are_found():
    """The finder sees the inline commands it is meant to (a guard against a broken regex)."""
    found = {(c.path.name, c.tokens[:3]) for c in INLINE}
    assert ("model_card.md", ("python", "-m", "rir_core.train")) in found
    assert ("model_card.md", ("python", "-m", "rir_core.evaluate")) in found
    assert ("README.md", ("apt-get", "install", "chromium")) in found
    assert len(INLINE) >= 15


@pytest.mark.parametrize(
    "path", sorted({c.path for c in INLINE}), ids=lambda p: str(p.relative_to(REPO))
)
def test_inline_commands(path: Path):
    """Commands written inline in a page's sentences: checked, and parsed by their real parser."""
    requests = []
    for command in (c for c in INLINE if c.path == path):
        try:
            requests += check_inline(command)
        except AssertionError as err:
            raise AssertionError(f"{command.id} `{shlex.join(command.tokens)}`: {err}") from None
    parse_with_real_parsers(requests)


@pytest.mark.parametrize("block", _params(PYTHON, ("train(",)))
def test_python_block(block: Block, workspace: Path):
    code = block.text
    for file, old, new, _why in SNIPPET_EDITS:
        if block.path == REPO / file:
            code = code.replace(old, new)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workspace,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{block.id}:\n{(proc.stdout + proc.stderr)[-6000:]}"


def test_every_snippet_edit_still_applies():
    for file, old, _new, _why in SNIPPET_EDITS:
        assert old in (REPO / file).read_text(), f"{file} no longer has {old!r}: update the edit"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_links_resolve():
    dangling = []
    for path in DOC_FILES:
        for target in LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (path.parent / target.split("#")[0]).resolve().exists():
                dangling.append(f"{path.relative_to(REPO)} -> {target}")
    assert not dangling, dangling


def test_lesson_links_in_the_docs_exist():
    from app.lessons import PAGE_PATHS, lessons

    found = 0
    for path in DOC_FILES:
        for page, lesson_id in re.findall(r"/(\w*)\?lesson=([\w-]+)", path.read_text()):
            found += 1
            assert lesson_id in lessons(), f"{path.name}: no lesson {lesson_id!r}"
            right = PAGE_PATHS[lessons()[lesson_id].page]
            assert right == page, f"{path.name}: lesson {lesson_id!r} opens on /{right}"
    assert found >= 9


def test_the_module_map_is_complete_and_current():
    """docs/architecture.md names every module of rir_core/ and app/, and only existing ones."""
    text = (REPO / "docs" / "architecture.md").read_text()
    modules = [
        p.relative_to(REPO).as_posix()
        for pattern in ("rir_core/*.py", "app/*.py", "app/pages/*.py")
        for p in sorted(REPO.glob(pattern))
        if p.name != "__init__.py"
    ]
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"add a row for each to the module map in docs/architecture.md: {missing}"
    gone = [m for m in re.findall(r"`((?:app|rir_core)/[\w/]+\.py)`", text) if m not in modules]
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
