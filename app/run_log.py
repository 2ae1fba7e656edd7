"""A run's ``log.jsonl`` and parse records, read back for the Training page.

``rir_core.train`` appends one JSON line per event (``start``, ``step``, ``eval``,
``checkpoint``, ``end``; see docs/training.md); the page polls it every second, so
:func:`read_log` keeps what it parsed and reads only the bytes appended since. The worker
(``app/job_worker.py``) writes the model's parse of the watched expression at every evaluation
to ``parses/step-NNNNNNN.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARSES_DIR = "parses"


STEP_FIELDS = ("step", "epoch", "loss", "accuracy", "lr", "elapsed_s", "eta_s", "seq_per_s")
EVAL_FIELDS = (
    "step",
    "epoch",
    "dev_accuracy",
    "best_dev_accuracy",
    "lr",
    "elapsed_s",
    "dev_groups",  # accuracy and n per length group (unchunked, chunked, long)
    "train_groups",  # the same on the training batches since the previous evaluation
    "probe",  # the length probe, at the evaluations where it ran
    "score",  # what selection used
)


@dataclass
class RunLog:
    """What log.jsonl says so far. ``start`` / ``end`` belong to the latest invocation;
    ``elapsed_before`` is the training time of the earlier invocations."""

    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    invocations: int = 0
    elapsed_before: float = 0.0

    @property
    def last_step(self) -> dict[str, Any] | None:
        return self.steps[-1] if self.steps else None

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self._rewind(event.get("resumed_from"))
            self.start, self.end = event, None
            self.invocations += 1
            self.elapsed_before = self.steps[-1]["elapsed_s"] if self.steps else 0.0
        elif kind == "step":
            self.steps.append({k: event.get(k) for k in STEP_FIELDS})
        elif kind == "eval":
            self.evals.append({k: event.get(k) for k in EVAL_FIELDS})
        elif kind == "end":
            self.end = event

    def _rewind(self, resumed_from: Any) -> None:
        """Forget the steps and evaluations logged after the checkpoint a run resumes from.

        A run killed outright (SIGKILL, out of memory, power cut) had logged steps after its
        last ``last/``; the resumed invocation starts again from that checkpoint and logs those
        steps once more. Its lines replace the dead one's, so every step is shown once, and what
        is shown is what the surviving weights went through. (A clean stop saves at its last
        step, so nothing is dropped.)
        """
        if not isinstance(resumed_from, int) or isinstance(resumed_from, bool):
            return

        def kept(record: dict[str, Any]) -> bool:
            step = record.get("step")
            return not isinstance(step, (int, float)) or step <= resumed_from

        self.steps = [s for s in self.steps if kept(s)]
        self.evals = [e for e in self.evals if kept(e)]


_LOGS: dict[str, tuple[int, int, RunLog]] = {}  # path -> (inode, bytes read, parsed)
_LOGS_LOCK = threading.Lock()
MAX_CACHED_LOGS = 32  # the least recently read are dropped (and read again if asked for)


def read_log(path: Path) -> RunLog:
    """The parsed log (a snapshot); only the bytes appended since the last call are read."""
    key = str(path)
    try:
        st = path.stat()
    except OSError:
        return RunLog()
    with _LOGS_LOCK:
        inode, offset, log = _LOGS.pop(key, (st.st_ino, 0, RunLog()))
        if inode != st.st_ino or st.st_size < offset:  # replaced or truncated: start over
            offset, log = 0, RunLog()
        if st.st_size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            complete = chunk.rfind(b"\n") + 1  # a half-written last line waits for next time
            for line in chunk[:complete].splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    log.add(event)
            offset += complete
        _LOGS[key] = (st.st_ino, offset, log)  # (re)inserted last: the most recent
        while len(_LOGS) > MAX_CACHED_LOGS:
            _LOGS.pop(next(iter(_LOGS)))
        return dataclasses.replace(log, steps=list(log.steps), evals=list(log.evals))


def parse_steps(job_dir: Path) -> list[int]:
    """Steps at which the watched expression's parse was recorded, in order."""
    folder = job_dir / PARSES_DIR
    if not folder.is_dir():
        return []
    steps = []
    for path in folder.glob("step-*.json"):
        with contextlib.suppress(ValueError):
            steps.append(int(path.stem.split("-", 1)[1]))
    return sorted(steps)


def parse_path(job_dir: Path, step: int) -> Path:
    return job_dir / PARSES_DIR / f"step-{step:07d}.json"


def load_parse(job_dir: Path, step: int) -> dict[str, Any] | None:
    """The parse record of ``step`` (None when missing or unreadable)."""
    try:
        record = json.loads(parse_path(job_dir, step).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
