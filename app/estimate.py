"""How long a training run will take, shown before it starts.

The cost model (seconds of one optimizer step on one CPU thread)::

    step_s = L * (C_STEP + C_BEAM * D * K + C_ITEM * D * K * B)

``L`` is the mean length of the training examples in tokens: the inner recursion runs about one
merge step per token, one after the other, and length-bucketed batches hold examples of similar
length. Each merge step has a fixed cost (``C_STEP``: Python and kernel launches), a cost per
beam and hidden unit (``C_BEAM``) and a cost per example (``C_ITEM``). A dev evaluation costs
``EVAL_FACTOR`` times the same expression per eval batch (forward only).

The constants come from timing forward + backward + AdamW on length-bucketed batches of the
training split (D 16-128, K 1-7, B 8-128, 10-50 tokens) on the 2-core development machine, one
torch thread, process time. Every run on a server logs its own throughput (``seq_per_s`` in
``log.jsonl``): the median ratio of predicted to measured time over the latest runs on the same
kind of device corrects the formula for that server (:func:`calibration`).
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.jobs import JobSettings

C_STEP = 2.0e-3  # s per token position and step: fixed overhead of a merge step
C_BEAM = 3.0e-6  # s per token position, hidden unit and beam
C_ITEM = 3.5e-7  # s per token position, hidden unit, beam and example of the batch
EVAL_FACTOR = 0.3  # a forward pass in inference mode costs ~30% of a training step
STARTUP_S = 8.0  # start the worker, import torch, read the data, build the model
MEASURED_ON = "a 2-core CPU, one thread"
CALIBRATION_RUNS = 5  # the latest runs whose measured speed corrects the formula
MIN_STEPS = 20  # a run must have logged this many steps to count as a measurement
FALLBACK_MEAN_TOKENS = 22.0  # mean length of the standard training split


def step_seconds(mean_tokens: float, hidden: int, beam: int, batch: int) -> float:
    """Predicted seconds of one training step (1 CPU thread), see the module docstring."""
    dk = hidden * beam
    return mean_tokens * (C_STEP + C_BEAM * dk + C_ITEM * dk * batch)


@functools.lru_cache(maxsize=16)
def _lengths(path: str, mtime_ns: int) -> tuple[int, ...]:
    """Token counts of a TSV file in our layout (``label<TAB>tokens``), in file order."""
    counts = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            text = line.rstrip("\n").split("\t", 1)[-1].strip()
            if text and text.lower() != "target":
                counts.append(text.count(" ") + 1)
    return tuple(counts)


def mean_tokens(split: str, max_tokens: int | None, n: int | None) -> float | None:
    """Mean length of the first ``n`` examples of ``split`` with at most ``max_tokens`` tokens,
    from the cached split file; None when the split is not generated yet."""
    from rir_core.generate import SPLITS, split_cache_path

    if split not in SPLITS:
        return None
    path = split_cache_path(SPLITS[split])
    try:
        counts = _lengths(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None
    kept = [c for c in counts if max_tokens is None or c <= max_tokens]
    kept = kept[:n] if n is not None else kept
    return sum(kept) / len(kept) if kept else None


def _data_sizes(train_n: int | None, dev_n: int | None, max_tokens: int | None) -> dict:
    from rir_core.generate import SPLITS

    mean = mean_tokens("train", max_tokens, train_n)
    n_train = train_n or SPLITS["train"].count
    if mean is not None and max_tokens is not None:  # the filter may leave fewer than asked
        from rir_core.generate import split_cache_path

        path = split_cache_path(SPLITS["train"])
        counts = _lengths(str(path), path.stat().st_mtime_ns)
        n_train = min(n_train, sum(1 for c in counts if c <= max_tokens))
    return {
        "train_n": n_train,
        "train_tokens": mean,
        "dev_n": dev_n or SPLITS["dev"].count,
        "dev_tokens": mean_tokens("dev", None, dev_n),
    }


def predict_seconds(recipe: dict[str, Any], sizes: dict[str, Any]) -> tuple[float, int, int]:
    """``(seconds, steps, evaluations)`` of a recipe ``{"model", "train"}`` on the given data."""
    model, train = recipe["model"], recipe["train"]
    d, k, b = int(model["hidden_size"]), int(model["beam_size"]), int(train["batch_size"])
    steps_per_epoch = math.ceil(sizes["train_n"] / b)
    steps = steps_per_epoch * int(train["epochs"])
    if train.get("max_steps") is not None:
        steps = min(steps, int(train["max_steps"]))
    every = int(train.get("eval_every") or 0)
    evals = steps // every if every else math.ceil(steps / steps_per_epoch)
    tokens = sizes["train_tokens"] or FALLBACK_MEAN_TOKENS
    dev_tokens = sizes["dev_tokens"] or FALLBACK_MEAN_TOKENS
    eb = int(train.get("eval_batch_size") or 128)
    eval_s = math.ceil(sizes["dev_n"] / eb) * EVAL_FACTOR * step_seconds(dev_tokens, d, k, eb)
    return steps * step_seconds(tokens, d, k, b) + evals * eval_s, steps, evals


# --------------------------------------------------------------------------------------------
# Calibration on this server's own runs


def _first_and_last_step(log: Path) -> tuple[dict | None, dict | None]:
    """The log's first line (the start event) and its last step event (read from the tail)."""
    try:
        with open(log, "rb") as handle:
            first = json.loads(handle.readline() or b"null")
            size = handle.seek(0, 2)
            handle.seek(max(0, size - 16_384))
            tail = handle.read().splitlines()
    except (OSError, ValueError):
        return None, None
    for line in reversed(tail):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "step":
            return first if isinstance(first, dict) else None, event
    return None, None


@functools.lru_cache(maxsize=256)
def _run_ratio(log: str, mtime_ns: int) -> tuple[str, float] | None:
    """``(device type, measured / predicted step time)`` of one run, or None."""
    start, step = _first_and_last_step(Path(log))
    if not start or not step or start.get("event") != "start":
        return None
    if int(step.get("step") or 0) < MIN_STEPS or not step.get("seq_per_s"):
        return None
    recipe = start.get("recipe") or {}
    try:
        data = recipe["data"]
        sizes = _data_sizes(data.get("train_n"), data.get("dev_n"), data.get("max_train_tokens"))
        model, train = recipe["model"], recipe["train"]
        predicted = step_seconds(
            sizes["train_tokens"] or FALLBACK_MEAN_TOKENS,
            int(model["hidden_size"]),
            int(model["beam_size"]),
            int(train["batch_size"]),
        )
        measured = int(train["batch_size"]) / float(step["seq_per_s"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    device = "cuda" if str(start.get("device", "cpu")).startswith("cuda") else "cpu"
    return device, measured / predicted


def calibration(runs: Path, device: str) -> tuple[float, int]:
    """``(factor, runs used)``: the median measured/predicted time of the latest runs."""
    logs = sorted(runs.glob("*/log.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    ratios = []
    for log in logs[:20]:
        found = _run_ratio(str(log), log.stat().st_mtime_ns)
        if found is not None and found[0] == device:
            ratios.append(found[1])
        if len(ratios) == CALIBRATION_RUNS:
            break
    return (statistics.median(ratios), len(ratios)) if ratios else (1.0, 0)


# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A run's predicted duration. ``seconds`` is None where there is nothing to base it on."""

    seconds: float | None
    steps: int
    evaluations: int
    basis: str  # one sentence: what the number rests on
    capped: str | None = None  # "max_minutes" or "max_steps" when a limit ends the run first


def estimate(settings: JobSettings, runs: Path) -> Estimate:
    """Predicted duration of a run with ``settings`` on this server (see the module docs)."""
    import torch

    from rir_core.train import resolve_recipe

    model, train, data = settings.overrides()
    recipe = resolve_recipe(settings.preset, None, model, train, data).to_dict()
    sizes = _data_sizes(settings.train_n, settings.dev_n, settings.max_train_tokens)
    seconds, steps, evals = predict_seconds(recipe, sizes)
    full_steps = predict_seconds({**recipe, "train": {**recipe["train"], "max_steps": None}}, sizes)
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = "cuda" if device.startswith("cuda") else "cpu"
    factor, used = calibration(runs, device)
    tokens = sizes["train_tokens"]
    length = (
        f"mean length {tokens:.1f} tokens"
        if tokens
        else f"the standard split's mean length ({FALLBACK_MEAN_TOKENS:g} tokens)"
    )
    if device == "cuda" and used == 0:
        return Estimate(
            None,
            steps,
            evals,
            "No estimate for a GPU until a first run on this server has measured its speed; "
            "the progress bar shows the live ETA.",
        )
    basis = f"Formula from hidden size, beam, batch and {length}, timed on {MEASURED_ON}" + (
        f", corrected ×{factor:.2f} by the speed of {used} earlier run(s) here." if used else "."
    )
    if not tokens:
        basis += " The training split is generated on first use, which adds a few minutes."
    total = STARTUP_S + seconds * factor
    capped = "max_steps" if full_steps[1] > steps else None
    if settings.max_minutes is not None and total > settings.max_minutes * 60:
        total, capped = settings.max_minutes * 60 + STARTUP_S, "max_minutes"
    return Estimate(total, steps, evals, basis, capped)
