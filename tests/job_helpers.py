"""Helpers for the Training page's tests: tiny settings, fake jobs, small checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.jobs import JobSettings

# A run that trains for real in a few seconds on a busy CPU: D 16, 64 short examples, batch 8.
TINY = dict(
    hidden_size=16,
    beam_size=2,
    chunk_width=30,
    batch_size=8,
    train_n=64,
    dev_n=16,
    max_train_tokens=20,
    epochs=100,
    eval_every=25,
    max_minutes=None,
)


def tiny_settings(**changes) -> JobSettings:
    base = JobSettings.from_preset("classroom").to_dict()
    return JobSettings.from_dict({**base, **TINY, **changes})


def fake_active_job(root: Path, name: str, owner: str | None = None) -> subprocess.Popen:
    """A job directory whose "worker" is a sleeping process with ``app.job_worker`` and the
    folder on its command line (what the job manager checks): counts as running, costs no CPU."""
    job_dir = root / name
    job_dir.mkdir(parents=True)
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "app.job_worker", str(job_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    record = {
        "id": name,
        "status": "running",
        "pid": sleeper.pid,
        "created_at": "2024-01-01T00:00:00+00:00",
        "settings": tiny_settings().to_dict(),
        "owner": owner,
    }
    (job_dir / "job.json").write_text(json.dumps(record))
    return sleeper


def tiny_checkpoint(path: Path, **config) -> Path:
    """A valid checkpoint directory of a tiny random model (``config``: ModelConfig fields)."""
    from rir_core.checkpoint import save_checkpoint
    from rir_core.model import build_model

    tiny = dict(hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8)
    model = build_model(**{**tiny, **config})
    return save_checkpoint(path, model, {"notes": "test"})


def fake_finished_job(root: Path, name: str = "20240102-030405-abcd") -> Path:
    """A finished job written straight to disk: job.json, a log with 20 steps and 2
    evaluations, two parses of the watched expression and a best/ checkpoint."""
    from app.job_worker import write_parse

    job_dir = root / name
    job_dir.mkdir(parents=True)
    settings = tiny_settings()
    record = {
        "id": name,
        "status": "finished",
        "pid": None,
        "created_at": "2024-01-02T03:04:05+00:00",
        "settings": settings.to_dict(),
        "owner": None,
        "planned_steps": 20,
        "result": {"status": "max_steps", "message": "reached max_steps at step 20", "step": 20},
    }
    (job_dir / "job.json").write_text(json.dumps(record))
    events = [{"event": "start", "recipe": {}, "device": "cpu"}]
    for i in range(1, 21):
        events.append({
            "event": "step", "step": i, "epoch": i / 8, "loss": 2.3 - i * 0.05,
            "accuracy": 0.1 + i * 0.02, "lr": 3e-3, "elapsed_s": i * 0.1,
            "eta_s": (20 - i) * 0.1, "seq_per_s": 80.0,
        })  # fmt: skip
        if i % 10 == 0:
            events.append({
                "event": "eval", "step": i, "dev_accuracy": 0.2 + i / 100,
                "best_dev_accuracy": 0.2 + i / 100, "lr": 3e-3,
            })  # fmt: skip
    events.append({"event": "end", "status": "max_steps", "step": 20})
    (job_dir / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    ckpt = tiny_checkpoint(job_dir / "best", beam_size=settings.beam_size)
    from rir_core.checkpoint import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    for step, dev in ((0, None), (10, 0.3), (20, 0.4)):
        write_parse(job_dir, model, settings.watch, step, dev)
    return job_dir


def kill_workers() -> None:
    """Kill the job workers this process started and that still run (a failed test's)."""
    from app import jobs

    for child in list(jobs._CHILDREN.values()):
        if child.poll() is None:
            child.kill()
            child.wait()
