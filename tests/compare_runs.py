"""Two training runs side by side at the same steps: the held-out accuracy per length group and
the length probe that every evaluation logs (docs/training.md, "Seeing chunk composition").

An A/B at equal steps is how the model card compares recipes (session 11: a chunk-heavy run
from scratch against the authors'-regime run of session 6):

    python tests/compare_runs.py pretrained/authors_run pretrained/chunkmix_run/evals_S1.jsonl \
        --names control,chunk-heavy --steps 1050,2100,2800,3500,4200,4900,5600,5950

Each argument is a run directory (its ``log.jsonl``) or a JSONL log; only the ``eval`` events
are read, so a log filtered to them serves as well. Without ``--steps`` the table has every step
at which both runs evaluated. It prints a Markdown table: per run, dev accuracy on the rows never
chunked at the model's W, on the chunked rows, and the probe's accuracy. Seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rir_core.report import read_log

ROWS = (
    ("dev never chunked", lambda e: _group(e, "unchunked")),
    ("dev chunked", lambda e: _group(e, "chunked")),
    ("probe", lambda e: (e.get("probe") or {}).get("accuracy")),
)


def _group(event: dict, name: str) -> float | None:
    return ((event.get("dev_groups") or {}).get(name) or {}).get("accuracy")


def read_evals(path: Path) -> dict[int, dict]:
    """The ``eval`` events of a run directory or JSONL log, by step (``rir_core.report.read_log``:
    a line cut by a crash is skipped, a later line wins after a resume)."""
    log = path / "log.jsonl" if path.is_dir() else path
    if not log.is_file():
        raise ValueError(f"{path}: no such log (give a run directory or its log.jsonl)")
    evals = {int(event["step"]): event for event in read_log(log)[1]}
    if not evals:
        raise ValueError(f"{log}: no evaluation events")
    return evals


def table(runs: list[tuple[str, dict[int, dict]]], steps: list[int] | None = None) -> str:
    """A Markdown table: one row per run and measure, one column per step."""
    if steps is None:
        steps = sorted(set.intersection(*(set(evals) for _, evals in runs)))
        if not steps:
            raise ValueError("the runs have no evaluation step in common (pass --steps)")

    def cell(evals: dict[int, dict], step: int, get) -> str:
        value = get(evals[step]) if step in evals else None
        return "-" if value is None else f"{100 * value:.1f}%"

    lines = [
        "| step | " + " | ".join(f"{s:,}" for s in steps) + " |",
        "|---" * (len(steps) + 1) + "|",
    ]
    for name, evals in runs:
        for label, get in ROWS:
            cells = " | ".join(cell(evals, s, get) for s in steps)
            lines.append(f"| {name}: {label} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs=2, type=Path, metavar="RUN", help="run dir or JSONL log")
    parser.add_argument("--names", default="A,B", help="two names, comma-separated")
    parser.add_argument("--steps", default=None, help="steps to show, comma-separated")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.names.split(",")]
    try:
        if len(names) != 2 or not all(names):
            raise ValueError(f"--names needs two names, got {args.names!r}")
        steps = None
        if args.steps:
            try:
                steps = [int(s.replace("_", "")) for s in args.steps.split(",")]
            except ValueError:
                raise ValueError(f"--steps must be whole numbers, got {args.steps!r}") from None
        runs = [(name, read_evals(path)) for name, path in zip(names, args.runs, strict=True)]
        print(table(runs, steps))
    except ValueError as error:
        print(f"compare_runs: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
