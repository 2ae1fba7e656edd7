"""Figures for the model card: ``python -m rir_core.report --run DIR [--eval EVAL.json] --out DIR``.

* ``training_curve.png``: training loss and accuracy (smoothed over steps) and dev accuracy, from
  the run's ``log.jsonl``;
* ``accuracy_vs_length.png``: accuracy per length bucket over the standard suite, from the JSON
  written by ``python -m rir_core.evaluate --splits standard --json EVAL.json``.

The figures are made with matplotlib (Agg), so no display is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rir_core.data import cli_error, read_json


def read_log(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Step and eval events of a run log (later lines win after a resume).

    A line that is not a JSON object (one cut by a crash mid-write) is skipped.
    """
    steps: dict[int, dict[str, Any]] = {}
    evals: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:  # a damaged line is skipped
        for line in f:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if not isinstance(event, dict) or not _numbers(event, "step"):
                continue
            if event.get("event") == "step":
                steps[int(event["step"])] = event
            elif event.get("event") == "eval":
                evals[int(event["step"])] = event
    return [steps[k] for k in sorted(steps)], [evals[k] for k in sorted(evals)]


def _numbers(event: dict[str, Any], *keys: str) -> bool:
    """Whether every key of ``event`` holds a number (a log line from another tool may not)."""
    return all(
        isinstance(event.get(k), (int, float)) and not isinstance(event.get(k), bool) for k in keys
    )


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def training_curve(run: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = run / "log.jsonl"
    if not log.is_file():
        raise ValueError(f"{run} is not a training run: it has no log.jsonl.")
    steps, evals = read_log(log)
    steps = [s for s in steps if _numbers(s, "loss", "accuracy")]
    evals = [e for e in evals if _numbers(e, "dev_accuracy")]
    if not steps:
        raise ValueError(f"{log} has no training steps.")
    x = [s["step"] for s in steps]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(x, _smooth([s["loss"] for s in steps], 50), color="#1f77b4")
    ax1.set_xlabel("step (batch of 128)")
    ax1.set_ylabel("training loss (moving average of 50 steps)")
    ax1.grid(alpha=0.3)
    ax2.plot(
        x,
        _smooth([s["accuracy"] for s in steps], 50),
        label="train (moving average)",
        color="#aec7e8",
    )
    if evals:
        ax2.plot(
            [e["step"] for e in evals],
            [e["dev_accuracy"] for e in evals],
            "o-",
            label="dev",
            color="#d62728",
        )
    ax2.set_xlabel("step (batch of 128)")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1)
    ax2.legend(loc="lower right")
    ax2.grid(alpha=0.3)
    fig.suptitle(f"Training of {run.name}")
    fig.tight_layout()
    path = out / "training_curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _length_curves(eval_json: Path) -> dict[str, list[tuple[float, float]]]:
    """Per split, (bucket centre, accuracy) for the buckets of at least 10 rows, by length.

    Raises ``ValueError`` (one sentence naming the file) when the file is not the JSON that
    ``python -m rir_core.evaluate --splits ... --json`` writes.
    """
    data = read_json(eval_json, "evaluation file", strict=False)  # as evaluate writes it
    splits = data.get("splits") if isinstance(data, dict) else None
    if not splits or not isinstance(splits, dict):
        raise ValueError(f"{eval_json} has no 'splits' (write it with --splits standard).")
    curves: dict[str, list[tuple[float, float]]] = {}
    for name, res in splits.items():
        pts = []
        buckets = res.get("buckets") if isinstance(res, dict) else None
        if not isinstance(buckets, dict):
            raise ValueError(f"{eval_json}: split {name!r} has no per-length 'buckets'.")
        for bucket, b in buckets.items():
            try:
                lo, hi = (int(v) for v in str(bucket).split("-"))
                n, accuracy = int(b["n"]), float(b["accuracy"])
            except (ValueError, TypeError, KeyError):
                raise ValueError(
                    f"{eval_json}: split {name!r}, bucket {bucket!r} is not a length range "
                    "with 'n' and 'accuracy'."
                ) from None
            if n >= 10:
                pts.append(((lo + hi) / 2, accuracy))
        curves[str(name)] = sorted(pts)
    return curves


def accuracy_vs_length(eval_json: Path, out: Path, curves=None) -> Path:
    """The figure for ``eval_json``; ``curves``: its :func:`_length_curves`, when already read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if curves is None:
        curves = _length_curves(eval_json)
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, pts in curves.items():
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name, markersize=4)
    ax.axvline(100, color="grey", linestyle=":", label="longest training length")
    ax.set_xlabel("expression length (tokens; bucket centre)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path = out / "accuracy_vs_length.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rir_core.report", description=__doc__)
    parser.add_argument("--run", required=True, help="a training run directory (with log.jsonl)")
    parser.add_argument("--eval", help="JSON from `python -m rir_core.evaluate --splits ...`")
    parser.add_argument("--out", required=True, help="folder for the PNG files")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if args.eval:
            curves = _length_curves(Path(args.eval))  # a bad file is named before any writing
        out.mkdir(parents=True, exist_ok=True)
        print(training_curve(Path(args.run), out))
        if args.eval:
            print(accuracy_vs_length(Path(args.eval), out, curves))
    except (OSError, ValueError) as err:
        print(cli_error(parser.prog, err), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
