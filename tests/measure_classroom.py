"""What a preset's run shows on the Training page, evaluation by evaluation (a measurement).

    python tests/measure_classroom.py [--preset classroom] [--set epochs=20 ...] [--json OUT]

Starts the run exactly as the Training page's *Start training* does (``app.jobs.start_job``: a
worker process, at lower priority, with the page's thread count), in a scratch runs folder,
waits for it to end and prints, for every evaluation: the training time, the step and epoch,
the dev accuracy, and the watched expression's tree as the page draws it (its recall of the
gold constituents, its prediction). Then the same recall over ``--sample`` dev expressions of
the run's training lengths, the final model's, so that the watched expression is not a lucky
pick. ``--set FIELD=VALUE`` changes a field of the page's settings (``app.jobs.JobSettings``),
as a student would in the form. Prints the machine's load average: numbers from a busy machine
say so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import jobs, run_log  # noqa: E402


def _value(field: dataclasses.Field, raw: str):
    """``raw`` as the type of the settings field (``none`` for no limit)."""
    if raw.lower() == "none":
        return None
    kind = str(field.type)
    if "bool" in kind:
        return raw.lower() in ("1", "true", "yes", "on")
    if "int" in kind:
        return int(raw)
    if "float" in kind:
        return float(raw)
    return raw


def settings_from(preset: str, changes: list[str]) -> jobs.JobSettings:
    settings = jobs.JobSettings.from_preset(preset)
    fields = {f.name: f for f in dataclasses.fields(jobs.JobSettings)}
    values = {}
    for change in changes:
        name, _, raw = change.partition("=")
        if name not in fields:
            raise SystemExit(f"--set: no settings field {name!r}; fields: {', '.join(fields)}")
        values[name] = _value(fields[name], raw)
    return dataclasses.replace(settings, **values)


def sample_recall(job_dir: Path, settings: jobs.JobSettings, n: int) -> dict[str, float]:
    """The final (best) model's mean gold recall and accuracy on ``n`` dev expressions of the
    run's training lengths."""
    import torch

    from rir_core.checkpoint import load_checkpoint
    from rir_core.generate import load_split

    torch.set_num_threads(jobs.worker_threads())
    model, _ = load_checkpoint(job_dir / "best")
    longest = settings.max_train_tokens or 10**9
    dev = [ex for ex in load_split("dev") if len(ex) <= longest][:n]
    recalls, right = [], 0
    for ex in dev:
        trace = model.trace(ex.text, seed=0).to_dict()
        recalls.append(trace["final_beams"][0]["gold_recall"])
        right += trace["prediction"] == trace["ground_truth"]
    return {"n": len(dev), "recall": sum(recalls) / len(dev), "accuracy": right / len(dev)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="classroom")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--sample", type=int, default=200, help="dev expressions for recall")
    parser.add_argument("--runs", type=Path, help="runs folder (default: a scratch folder)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    settings = settings_from(args.preset, args.set)
    runs = args.runs or Path(tempfile.mkdtemp(prefix="measure-classroom-"))
    os.environ[jobs.RUNS_ENV] = str(runs)
    print(f"settings: {settings.to_dict()}")
    print(f"worker threads: {jobs.worker_threads()}; load average at start: {os.getloadavg()}")
    t0 = time.monotonic()
    job = jobs.start_job(settings, root=runs)
    while jobs.get_job(job.id, runs).active:
        time.sleep(1.0)
    wall = time.monotonic() - t0
    job = jobs.get_job(job.id, runs)
    log = run_log.read_log(job.dir / "log.jsonl")
    elapsed = {e["step"]: e["elapsed_s"] for e in log.evals}
    rows = []
    print(f"\n{'time s':>7} {'step':>5} {'epoch':>5} {'dev':>5} {'watched recall':>15}  predicts")
    for step in run_log.parse_steps(job.dir):
        record = run_log.load_parse(job.dir, step)
        recall = record["final_beams"][0]["gold_recall"]
        row = {
            "elapsed_s": elapsed.get(step, 0.0),
            "step": step,
            "epoch": next((e["epoch"] for e in log.evals if e["step"] == step), 0.0),
            "dev_accuracy": record.get("dev_accuracy"),
            "watched_recall": recall,
            "prediction": record["prediction"],
            "truth": record["ground_truth"],
        }
        rows.append(row)
        dev = f"{row['dev_accuracy']:.0%}" if row["dev_accuracy"] is not None else "-"
        print(
            f"{row['elapsed_s']:7.0f} {step:5d} {row['epoch']:5.1f} {dev:>5} {recall:15.0%}"
            f"  {row['prediction']} (true {row['truth']})"
        )
    end = log.end or {}
    print(
        f"\n{job.status}: {end.get('message', '')} {wall:.0f} s from start to end "
        f"(training {log.steps[-1]['elapsed_s'] if log.steps else 0:.0f} s); "
        f"load average at the end: {os.getloadavg()}"
    )
    sample = sample_recall(job.dir, settings, args.sample) if args.sample else None
    if sample:
        print(
            f"best model on {sample['n']} dev expressions of at most "
            f"{settings.max_train_tokens} tokens: mean recall {sample['recall']:.0%}, "
            f"accuracy {sample['accuracy']:.0%}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": settings.to_dict(),
                    "wall_s": wall,
                    "status": job.status,
                    "evaluations": rows,
                    "sample": sample,
                },
                indent=1,
            )  # fmt: skip
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
