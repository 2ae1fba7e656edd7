"""Background training jobs of the Training page: one worker process per job, state on disk.

A job is a run directory ``RUNS/<id>/`` (``RUNS`` is ``$RIR_RUNS_DIR`` or ``runs/`` at the
repository root) holding, next to what ``rir_core.train`` writes there::

    job.json        {"id", "status", "pid", "created_at", "updated_at", "settings", "owner",
                     "planned_steps", "invocations", "result", "error"}
    worker.log      the worker's stdout and stderr
    parses/step-0000120.json   the model's parse of the watched expression at every evaluation
    eval/           a standard-suite evaluation (state.json, out.txt, result.json)
    config.json, log.jsonl, best/, last/     (see docs/training.md)

Everything the page shows is read back from these files, so a job survives a Streamlit rerun, a
closed tab and a server restart. The worker is ``python -m app.job_worker RUNS/<id> [--resume]``,
started in its own session (a Ctrl-C to the server does not reach it); it calls
``rir_core.train.prepare`` and never imports streamlit (``app/job_worker.py``). The page reads
the log and the parses back with ``app/run_log.py``. Stopping sends SIGTERM: the trainer
finishes its step, saves ``last/`` with the training state and the job becomes ``stopped``,
resumable with :func:`resume_job`.

Status: ``starting`` -> ``running`` -> ``stopping`` -> one of ``stopped`` (resumable),
``finished`` (its epochs, early stopping, max steps or max minutes) or ``failed``. A job whose
process died without saying so is reported ``failed``. At most :func:`max_jobs` jobs are active
on the server and one per owner (the page's session).

Environment: ``RIR_RUNS_DIR`` (where runs live, default ``runs/``), ``RIR_MAX_JOBS`` (active jobs
on the server, default 2; 0 switches training off), ``RIR_JOB_THREADS`` (torch threads per
worker, default the cores divided by ``RIR_MAX_JOBS``). Workers run at a lower priority (nice).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.run_log import read_log

try:
    import fcntl
except ImportError:  # Windows: locks then hold within this server process only
    fcntl = None  # type: ignore[assignment]

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS_ENV = "RIR_RUNS_DIR"
MAX_JOBS_ENV = "RIR_MAX_JOBS"
THREADS_ENV = "RIR_JOB_THREADS"
DEFAULT_MAX_JOBS = 2
WORKER_NICE = 5  # workers run at a lower priority than the server, so pages stay responsive
EXTERNAL_LIVE_S = 60.0  # a command-line run whose log changed this recently is shown live
STARTING_GRACE_S = 30.0  # a job counts as starting this long before its worker must be seen
WATCH_EXPRESSION = "[MAX 2 9 [MIN 4 7 ] 0 ]"  # the Explorer's default expression
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")  # also CLI run names (rir_paper)

ACTIVE = ("starting", "running", "stopping")
UPLOADS_DIR = "uploads"  # uploaded checkpoints live in RUNS/uploads/ (see app.model_store)


class JobError(Exception):
    """Why a job cannot be started, stopped or resumed: one sentence for the page."""


class CapacityError(JobError):
    """The server already runs its maximum number of jobs."""


def runs_dir() -> Path:
    """Where runs live: ``$RIR_RUNS_DIR`` or ``runs/`` at the repository root."""
    env = os.environ.get(RUNS_ENV, "").strip()
    return Path(env) if env else REPO_ROOT / "runs"


def max_jobs() -> int:
    """The server-wide cap on active jobs (``$RIR_MAX_JOBS``, default 2)."""
    try:
        return max(0, int(os.environ.get(MAX_JOBS_ENV, DEFAULT_MAX_JOBS)))
    except ValueError:
        return DEFAULT_MAX_JOBS


def worker_threads() -> int:
    """Torch threads per worker: the cores shared among the jobs that may run at once."""
    env = os.environ.get(THREADS_ENV, "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) // max(max_jobs(), 1))


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Settings: a preset plus the fields the page lets students change


@dataclass(frozen=True)
class JobSettings:
    """What to train: a preset and the overrides the page shows (None: the preset's value)."""

    preset: str = "classroom"  # the defaults are its settings (a test says so)
    hidden_size: int = 64  # D (the scorer sizes follow as D/2)
    beam_size: int = 3  # K
    chunk_width: int = 30  # W
    alignment: str = "sample"
    use_s4d: bool = True
    lr: float = 2e-3
    batch_size: int = 32
    train_n: int | None = 4000  # None: the whole training split
    dev_n: int | None = 300
    max_train_tokens: int | None = 20  # None: no length filter
    epochs: int = 20
    eval_every: int = 0  # steps between dev evaluations; 0 = at every epoch end
    patience: int = 0  # early stopping: dev evaluations without improvement; 0 = never
    max_minutes: float | None = 10.0
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    watch: str = WATCH_EXPRESSION  # the expression whose parse is drawn at every evaluation

    @classmethod
    def from_preset(cls, name: str) -> JobSettings:
        """The page's fields filled from preset ``name`` (:data:`rir_core.presets.PRESETS`)."""
        from rir_core.presets import get_preset

        p = get_preset(name)
        m, t, d = p.model, p.train, p.data
        return cls(
            preset=name,
            hidden_size=m.hidden_size,
            beam_size=m.beam_size,
            chunk_width=m.chunk_width,
            alignment=str(m.alignment.value),
            use_s4d=m.use_s4d,
            lr=t.lr,
            batch_size=t.batch_size,
            train_n=d.train_n,
            dev_n=d.dev_n,
            max_train_tokens=d.max_train_tokens,
            epochs=t.epochs,
            eval_every=t.eval_every,
            patience=t.patience,
            max_minutes=t.max_minutes,
            max_steps=t.max_steps,
            seed=t.seed,
            device=t.device,
        )

    def overrides(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """``(model, train, data)`` overrides of the preset for ``rir_core.train.prepare``."""
        model = {
            "hidden_size": self.hidden_size,
            "beam_size": self.beam_size,
            "chunk_width": self.chunk_width,
            "alignment": self.alignment,
            "use_s4d": self.use_s4d,
        }
        train = {
            "lr": self.lr,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "eval_every": self.eval_every,
            "patience": self.patience,
            "max_minutes": self.max_minutes,
            "max_steps": self.max_steps,
            "seed": self.seed,
            "device": self.device,
        }
        data = {
            "train_n": self.train_n,
            "dev_n": self.dev_n,
            "max_train_tokens": self.max_train_tokens,
        }
        return model, train, data

    def is_custom(self) -> bool:
        """Whether any field differs from the preset's."""
        return dataclasses.replace(self, watch=WATCH_EXPRESSION) != JobSettings.from_preset(
            self.preset
        )

    def label(self) -> str:
        return f"{self.preset} (custom)" if self.is_custom() else self.preset

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def problem(self) -> str | None:
        """Why these settings cannot train (one sentence), or None."""
        from rir_core.config import ConfigError
        from rir_core.listops import ListOpsSyntaxError, parse
        from rir_core.train import resolve_recipe

        try:
            model, train, data = self.overrides()
            resolve_recipe(self.preset, None, model, train, data)
        except ConfigError as err:
            return str(err)
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return "device cuda was asked for, but this server has no CUDA device."
        try:
            parse(self.watch, max_tokens=200)
        except ListOpsSyntaxError as err:
            return f"the watched expression is not ListOps: {err}."
        return None


# --------------------------------------------------------------------------------------------
# Job records on disk


@dataclass
class Job:
    """A run directory as the page sees it (``external``: a command-line run, no job.json)."""

    id: str
    dir: Path
    status: str
    settings: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    created_at: str = ""
    owner: str | None = None
    planned_steps: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    external: bool = False

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def live(self) -> bool:
        """Still changing: active, or a command-line run whose log was written just now."""
        if self.active:
            return True
        if not self.external or self.status != "command line":
            return False
        try:
            age = time.time() - (self.dir / "log.jsonl").stat().st_mtime
        except OSError:
            return False
        return age < EXTERNAL_LIVE_S

    @property
    def checkpoint(self) -> Path | None:
        """The model to use: ``best/`` (best dev accuracy), else ``last/``."""
        return checkpoint_of(self.dir)

    @property
    def resumable(self) -> bool:
        """Stopped (or crashed, or out of minutes) with a ``last/`` that holds training state."""
        if self.active or self.external or not (self.dir / "last").exists():
            return False
        reason = (self.result or {}).get("status")
        return self.status in ("stopped", "failed") or reason == "max_minutes"


def checkpoint_of(run_dir: Path) -> Path | None:
    for name in ("best", "last"):
        if (run_dir / name / "model.json").is_file():
            return run_dir / name
    return None


def _job_file(job_dir: Path) -> Path:
    return job_dir / "job.json"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, obj: Any) -> None:
    """Atomically: a temporary file in the same folder, then a rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


_THREAD_LOCK = threading.RLock()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) across threads and processes."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK, open(lock_path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _update(job_dir: Path, **changes: Any) -> dict[str, Any]:
    """Read-modify-write job.json under the job's lock (the page and the worker both write)."""
    with _locked(job_dir / ".job.lock"):
        record = _read_json(_job_file(job_dir)) or {}
        record.update(changes, updated_at=_now())
        _write_json(_job_file(job_dir), record)
        return record


# Workers this server process started (a finished one is reaped by its thread: no zombie).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _track(child: subprocess.Popen[bytes]) -> None:
    """Keep a child this server started, and reap it the moment it ends: a finished worker
    must not stay a zombie until the server exits because no page asked about it again."""
    _CHILDREN[child.pid] = child
    threading.Thread(target=child.wait, name=f"reap-{child.pid}", daemon=True).start()


def _alive(pid: int | None, *markers: str) -> bool:
    """Is ``pid`` a live process whose command line holds ``markers`` (our worker, not a zombie
    nor an unrelated process that got the pid of a dead one)?"""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:  # our own child: its pid cannot be reused before we reap it
        if child.poll() is None:
            return True  # (right after the fork its command line is still ours)
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # no procfs (macOS): trust the pid
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and all(m in cmdline for m in markers)


def _effective_status(record: dict[str, Any], job_dir: Path) -> tuple[str, str | None]:
    """The status job.json claims, corrected when its process is gone."""
    status = str(record.get("status", "failed"))
    error = record.get("error")
    if status not in ACTIVE or _alive(record.get("pid"), "app.job_worker", job_dir.name):
        return status, error
    if status == "starting":  # the worker has not said "running" yet
        created = record.get("updated_at") or record.get("created_at") or ""
        try:
            age = (_dt.datetime.now(_dt.UTC) - _dt.datetime.fromisoformat(created)).total_seconds()
        except ValueError:
            age = STARTING_GRACE_S
        if age < STARTING_GRACE_S:
            return status, error
    end = read_log(job_dir / "log.jsonl").end
    if end is not None:
        return _final_status(str(end.get("status"))), error
    if status == "stopping":  # stopped while starting up, before it could save anything
        return "stopped", "stopped before the first checkpoint."
    return "failed", "the training process ended unexpectedly (see worker.log in the run folder)."


def _final_status(trainer_status: str) -> str:
    return {"interrupted": "stopped", "non_finite": "failed"}.get(trainer_status, "finished")


def _external_status(job_dir: Path) -> str:
    log = read_log(job_dir / "log.jsonl")
    if log.end is not None:
        return _final_status(str(log.end.get("status")))
    return "command line"  # running elsewhere, or killed: the page cannot tell


def load_job(job_dir: Path) -> Job | None:
    """The job in ``job_dir`` (a command-line run gives an ``external`` job), or None."""
    record = _read_json(_job_file(job_dir))
    if record is None:
        if not (job_dir / "config.json").is_file() and not (job_dir / "log.jsonl").is_file():
            return None
        created = _dt.datetime.fromtimestamp(job_dir.stat().st_mtime, _dt.UTC)
        return Job(
            job_dir.name,
            job_dir,
            _external_status(job_dir),
            created_at=created.isoformat(timespec="seconds"),
            external=True,
        )
    status, error = _effective_status(record, job_dir)
    return Job(
        id=job_dir.name,
        dir=job_dir,
        status=status,
        settings=dict(record.get("settings") or {}),
        pid=record.get("pid"),
        created_at=str(record.get("created_at", "")),
        owner=record.get("owner"),
        planned_steps=record.get("planned_steps"),
        result=record.get("result"),
        error=error,
    )


def job_dir_for(job_id: str, root: Path | None = None) -> Path | None:
    """``RUNS/<job_id>`` when the id is well formed and stays inside RUNS, else None."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id) or job_id == UPLOADS_DIR:
        return None
    base = (root or runs_dir()).resolve()
    path = (base / job_id).resolve()
    return path if path.parent == base else None


def get_job(job_id: str, root: Path | None = None) -> Job | None:
    path = job_dir_for(job_id, root)
    return load_job(path) if path is not None and path.is_dir() else None


def list_jobs(root: Path | None = None) -> list[Job]:
    """Every run in RUNS, newest first."""
    base = root or runs_dir()
    if not base.is_dir():
        return []
    found = []
    for path in base.iterdir():
        if path.is_dir() and path.name != UPLOADS_DIR and JOB_ID.match(path.name):
            job = load_job(path)
            if job is not None:
                found.append(job)
    return sorted(found, key=lambda j: j.created_at, reverse=True)


def active_jobs(root: Path | None = None) -> list[Job]:
    return [j for j in list_jobs(root) if j.active]


# --------------------------------------------------------------------------------------------
# Start, stop, resume


def _new_id() -> str:
    return f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _new_job_dir(base: Path) -> Path:
    """A new, empty ``RUNS/<id>/``, never one that exists.

    Ids are the second plus 16 random bits, so two jobs started in the same second almost
    always differ; when they do not (or a command-line run took that name), ``mkdir`` refuses
    the existing folder and another id is drawn, instead of the new job writing its files over
    the other's.
    """
    for _ in range(100):
        path = base / _new_id()
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise JobError(f"Could not find a free run id in {base}; try again.")


def capacity_message(n_active: int, cap: int) -> str:
    if cap == 0:
        return "Training is switched off on this server (RIR_MAX_JOBS=0)."
    return (
        f"The server is already running {n_active} training job(s), its limit "
        f"(RIR_MAX_JOBS={cap}). Wait for one to finish, or stop one from the Runs list."
    )


def _check_room(base: Path, owner: str | None) -> None:
    active = active_jobs(base)
    if owner is not None:
        mine = [j for j in active if j.owner == owner]
        if mine:
            raise JobError(
                f"This session already has a run in progress ({mine[0].id}); stop it or wait "
                "for it to finish before starting another."
            )
    if len(active) >= max_jobs():
        raise CapacityError(capacity_message(len(active), max_jobs()))


def _spawn(job_dir: Path, extra: list[str]) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **{THREADS_ENV: str(worker_threads())})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    with open(job_dir / "worker.log", "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "app.job_worker", str(job_dir.resolve()), *extra],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the server, nor by its Ctrl-C
        )
    _track(child)
    return child.pid


def start_job(settings: JobSettings, owner: str | None = None, root: Path | None = None) -> Job:
    """Create ``RUNS/<new id>/`` and start its worker.

    Raises:
        JobError: bad settings, or this owner already has an active job.
        CapacityError: the server runs :func:`max_jobs` jobs already.
    """
    problem = settings.problem()
    if problem:
        raise JobError(f"These settings cannot train: {problem}")
    base = root or runs_dir()
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / ".jobs.lock"):  # counting and creating are one step for every session
        _check_room(base, owner)
        job_dir = _new_job_dir(base)
        record = {
            "id": job_dir.name,
            "status": "starting",
            "pid": None,
            "created_at": _now(),
            "settings": settings.to_dict(),
            "owner": owner,
            "planned_steps": None,
            "invocations": [],
            "result": None,
            "error": None,
        }
        _write_json(_job_file(job_dir), record)
        pid = _spawn(job_dir, [])
        _update(job_dir, pid=pid)
    return load_job(job_dir)  # type: ignore[return-value]


def stop_job(job_id: str, root: Path | None = None) -> Job:
    """Ask the job's worker to stop cleanly (SIGTERM: it saves ``last/`` and exits)."""
    job = get_job(job_id, root)
    if job is None or job.external:
        raise JobError(f"There is no app training job {job_id!r}.")
    if not job.active:
        return job
    _update(job.dir, status="stopping")
    if job.pid and _alive(job.pid, "app.job_worker", job.dir.name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, signal.SIGTERM)
    return load_job(job.dir)  # type: ignore[return-value]


def resume_job(job_id: str, owner: str | None = None, root: Path | None = None) -> Job:
    """Continue a stopped job exactly where it stopped (``--resume RUNS/<id>``)."""
    base = root or runs_dir()
    with _locked(base / ".jobs.lock"):
        job = get_job(job_id, base)
        if job is None or job.external:
            raise JobError(f"There is no app training job {job_id!r}.")
        if job.active:
            raise JobError(f"Run {job_id} is still running.")
        if not job.resumable:
            raise JobError(f"Run {job_id} has nothing to resume (it finished, or saved no state).")
        _check_room(base, owner)
        _update(job.dir, status="starting", pid=None, owner=owner, error=None)
        pid = _spawn(job.dir, ["--resume"])
        _update(job.dir, pid=pid)
    return load_job(job.dir)  # type: ignore[return-value]


def wait_for(job_id: str, done, timeout_s: float = 60.0, root: Path | None = None) -> Job:
    """Poll until ``done(job)`` (for tests and scripts); raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = get_job(job_id, root)
        if job is not None and done(job):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not get there in {timeout_s:.0f} s: {job}")
        time.sleep(0.2)


# --------------------------------------------------------------------------------------------
# Standard-suite evaluation: `python -m rir_core.evaluate --splits standard --limit N`


@dataclass
class Evaluation:
    status: str  # none, running, done, failed
    limit: int | None = None
    done: int = 0
    total: int = 0
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    checkpoint: str | None = None


def _suite() -> list[str]:
    from rir_core.generate import SPLITS

    return [name for name in SPLITS if name != "train"]


def start_evaluation(job_id: str, limit: int, root: Path | None = None) -> Evaluation:
    """Evaluate the job's model on the first ``limit`` examples of every standard split."""
    job = get_job(job_id, root)
    if job is None or job.external:
        raise JobError(f"There is no app training job {job_id!r}.")
    ckpt = job.checkpoint
    if ckpt is None:
        raise JobError(f"Run {job_id} has no saved model yet.")
    if evaluation(job_id, root).status == "running":
        raise JobError(f"An evaluation of run {job_id} is already running.")
    folder = job.dir / "eval"
    folder.mkdir(exist_ok=True)
    for name in ("result.json", "out.txt"):
        (folder / name).unlink(missing_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    command = [
        sys.executable, "-m", "rir_core.evaluate", "--checkpoint", str(ckpt.resolve()),
        "--splits", "standard", "--limit", str(int(limit)), "--device", "cpu",
        "--json", str((folder / "result.json").resolve()), "--no-progress",
    ]  # fmt: skip
    with open(folder / "out.txt", "wb") as out:
        child = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _track(child)
    _write_json(
        folder / "state.json",
        {"pid": child.pid, "limit": int(limit), "checkpoint": str(ckpt), "started_at": _now()},
    )
    return evaluation(job_id, root)


def evaluation(job_id: str, root: Path | None = None) -> Evaluation:
    """The state of the job's latest evaluation (``status`` ``none`` when there is none)."""
    job_dir = job_dir_for(job_id, root)
    state = _read_json(job_dir / "eval" / "state.json") if job_dir else None
    if job_dir is None or state is None:
        return Evaluation("none")
    folder = job_dir / "eval"
    try:
        out = (folder / "out.txt").read_text(errors="replace")
    except OSError:
        out = ""
    done = sum(1 for line in out.splitlines() if re.match(r"^\S+\taccuracy ", line))
    ev = Evaluation(
        "running", state.get("limit"), done, len(_suite()), checkpoint=state.get("checkpoint")
    )
    pid = state.get("pid")
    if pid and _alive(pid, "rir_core.evaluate", job_dir.name):
        return ev
    result = _read_json(folder / "result.json")
    if result is not None:
        ev.status, ev.results = "done", dict(result.get("splits", {}))
        return ev
    ev.status = "failed"
    errors = [line for line in out.splitlines() if "error:" in line]
    ev.error = (errors[-1] if errors else "the evaluation stopped without a result").split(
        "error: ", 1
    )[-1]
    return ev
