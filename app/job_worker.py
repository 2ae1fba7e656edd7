"""The training worker, ``python -m app.job_worker RUNS/<id> [--resume]``; never imports streamlit.

Started by ``app.jobs.start_job`` / ``resume_job`` in its own session, at a lower priority, with
its output in ``RUNS/<id>/worker.log``. It reads the job's settings from ``job.json``, trains
with ``rir_core.train.prepare`` (checkpoints, ``log.jsonl``) and says how it ended in
``job.json``. SIGTERM (the page's Stop) sets a flag that the trainer polls after every step: it
finishes the step, saves ``last/`` with the training state and returns, status ``stopped``. At
the start and at every evaluation it records the model's parse of the watched expression
(``parses/``), without touching the run's randomness.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from app.jobs import (
    WORKER_NICE,
    JobSettings,
    _final_status,
    _job_file,
    _now,
    _read_json,
    _update,
    _write_json,
    worker_threads,
)
from app.run_log import parse_path


def write_parse(job_dir: Path, module: Any, expression: str, step: int, dev: Any) -> None:
    """The model's parse of ``expression`` now, as a small JSON file (what the page draws).

    Eval mode and a forked RNG: recording the parse changes nothing in the run, so a resumed
    run stays exactly the run it would have been.
    """
    import torch

    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            trace = module.trace(expression, seed=0).to_dict()
    finally:
        module.train(was_training)
    keep = ("expression", "tokens", "ground_truth", "prediction", "probabilities", "gold_spans")
    record = {k: trace.get(k) for k in keep}
    record.update(step=step, dev_accuracy=dev, final_beams=trace["final_beams"][:3])
    path = parse_path(job_dir, step)
    path.parent.mkdir(exist_ok=True)
    _write_json(path, record)


def run(job_dir: Path, resume: bool) -> int:
    """Train the job in ``job_dir``; job.json says how it ended. Returns the exit status."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()  # the trainer polls should_stop after every step

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with contextlib.suppress(OSError, AttributeError):  # no os.nice on Windows
        os.nice(WORKER_NICE)
    record = _read_json(_job_file(job_dir)) or {}
    if record.get("status") == "stopping":  # stopped before this process had a pid
        stop.set()
    settings = JobSettings.from_dict(record.get("settings") or {})
    invocations = list(record.get("invocations") or [])
    invocations.append({"mode": "resume" if resume else "start", "started_at": _now()})
    _update(
        job_dir,
        status="stopping" if stop.is_set() else "running",
        pid=os.getpid(),
        invocations=invocations,
    )

    import torch

    from rir_core.train import SETUP_ERRORS, prepare
    from rir_core.trainer import Callbacks

    torch.set_num_threads(worker_threads())
    holder: dict[str, Any] = {}

    def on_eval(m: dict[str, Any]) -> None:
        write_parse(job_dir, holder["module"], settings.watch, m["step"], m["dev_accuracy"])

    callbacks = Callbacks(on_eval=on_eval, should_stop=stop.is_set)
    try:
        if resume:
            prepared = prepare(resume=job_dir, callbacks=callbacks)
        else:
            model, train, data = settings.overrides()
            prepared = prepare(
                settings.preset,
                model_overrides=model,
                train_overrides=train,
                data_overrides=data,
                out=job_dir,
                callbacks=callbacks,
                notes=f"trained from the app's Training page (job {job_dir.name})",
            )
        holder["module"] = prepared.trainer.module
        _update(job_dir, planned_steps=prepared.trainer.planned_steps())
        step = prepared.trainer.step
        if not parse_path(job_dir, step).exists():
            write_parse(job_dir, prepared.trainer.module, settings.watch, step, None)
        if stop.is_set() and not resume and step == 0:
            _update(job_dir, status="stopped", error="stopped before the first step.")
            return 0
        result = prepared.fit()
    except SETUP_ERRORS as err:
        _update(job_dir, status="failed", error=str(err))
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: the traceback goes to worker.log, the page says so
        import traceback

        traceback.print_exc()
        _update(
            job_dir,
            status="failed",
            error=f"training crashed ({type(err).__name__}: {err}); see worker.log in the run "
            "folder.",
        )
        return 1
    status = _final_status(result.status)
    _update(
        job_dir,
        status=status,
        result=result.to_dict(),
        error=result.message if status == "failed" else None,
    )
    print(f"{status}: {result.message}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.job_worker", description="Train a job of the app's Training page."
    )
    parser.add_argument("run_dir", type=Path, help="RUNS/<id>, holding job.json")
    parser.add_argument("--resume", action="store_true", help="continue from its last/")
    args = parser.parse_args(argv)
    return run(args.run_dir, args.resume)


if __name__ == "__main__":
    sys.exit(main())
