"""Accuracy of a trained model on ListOps files or on the standard suite.

Python API::

    evaluate_examples(model, examples, seed=0, batch_size=64) -> {"accuracy", "n", "correct"}

Command line::

    python -m rir_core.evaluate --checkpoint PATH --data FILE.tsv [FILE.tsv ...] [--json OUT]
    python -m rir_core.evaluate --checkpoint PATH --splits standard [--limit N] [--json OUT]

Each file and each split gets its accuracy and count, then one line per length bucket
(``--bucket-width`` tokens); ``--limit N`` keeps the first N rows of each.

Evaluation runs the model in eval mode with one seed for every example. The model's random draws
(beam alignment) are a function of each example's seed and position only, so the result does not
depend on the batch size or on which examples share a batch: a seed fixes the accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from rir_core.data import DataFormatError, Example, cli_error, encode_examples, read_tsv

DEFAULT_BUCKET_WIDTH = 100  # tokens per length bucket in the per-split report


def _bucket_name(length: int, width: int) -> str:
    lo = (length // width) * width
    return f"{lo}-{lo + width - 1}"


def evaluate_examples(
    model: torch.nn.Module,
    examples: Sequence[Example],
    seed: int = 0,
    batch_size: int = 64,
    *,
    bucket_width: int | None = None,
    group_of: Callable[[Example], str] | None = None,
    progress: bool = False,
    desc: str = "evaluate",
    **settings: Any,
) -> dict[str, Any]:
    """Accuracy of ``model`` on ``examples`` (eval mode, seeded; the model's mode is restored).

    Args:
        model: a :class:`~rir_core.model.ListOpsModel` (or a DDP wrapper around one).
        examples: labelled examples.
        seed: the seed of every example's random draws (beam alignment).
        batch_size: examples per forward pass (sorted by length, so batches have little padding).
        bucket_width: also report accuracy per length bucket of this many tokens.
        group_of: also report accuracy per group that this function puts each example in
            (the trainer's length groups: unchunked, chunked, long).
        progress: show a tqdm bar on stderr.
        desc: the bar's label.
        **settings: inference overrides passed to the model (``beam_size``, ``chunk_width``,
            ``alignment``).

    Returns:
        ``{"accuracy": float, "n": int, "correct": int}`` (accuracy 0.0 when there are no
        examples), plus ``"buckets": {"0-99": {"accuracy", "n", "correct"}, ...}`` with
        ``bucket_width``, and ``"groups": {name: {"accuracy", "n", "correct"}}`` with
        ``group_of``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    module = getattr(model, "module", model)
    device = next(module.parameters()).device
    was_training = module.training
    module.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    hits = [False] * len(examples)
    try:
        with torch.inference_mode():
            bar = tqdm(
                total=len(order),
                desc=desc,
                unit="seq",
                disable=not progress,
                file=sys.stderr,
                leave=False,
            )
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = [examples[i] for i in idx]
                ids, mask, labels = encode_examples(batch)  # (B, L), (B, L), (B,)
                logits = module(
                    ids.to(device),
                    mask.to(device),
                    seed,
                    lengths=[len(ex) for ex in batch],
                    **settings,
                )  # (B, Y)
                ok = (logits.argmax(-1).cpu() == labels).tolist()
                for i, flag in zip(idx, ok, strict=True):
                    hits[i] = bool(flag)
                bar.update(len(idx))
            bar.close()
    finally:
        module.train(was_training)
    correct = sum(hits)
    result: dict[str, Any] = {
        "accuracy": correct / len(examples) if examples else 0.0,
        "n": len(examples),
        "correct": correct,
    }
    if group_of is not None:
        tally: dict[str, list[int]] = {}
        for ex, hit in zip(examples, hits, strict=True):
            c_n = tally.setdefault(group_of(ex), [0, 0])
            c_n[0] += int(hit)
            c_n[1] += 1
        result["groups"] = {
            name: {"accuracy": c / n, "n": n, "correct": c} for name, (c, n) in tally.items()
        }
    if bucket_width is not None:
        if bucket_width < 1:
            raise ValueError(f"bucket_width must be at least 1, not {bucket_width}.")
        counts: dict[int, list[int]] = {}
        for ex, hit in zip(examples, hits, strict=True):
            key = len(ex) // bucket_width
            counts.setdefault(key, [0, 0])
            counts[key][0] += int(hit)
            counts[key][1] += 1
        result["buckets"] = {
            _bucket_name(key * bucket_width, bucket_width): {
                "accuracy": c / n,
                "n": n,
                "correct": c,
            }
            for key, (c, n) in sorted(counts.items())
        }
    return result


# --------------------------------------------------------------------------------------------
# Command line


class _UsageError(Exception):
    """A bad argument or input file: printed as one sentence, exit code 2."""


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rir_core.evaluate",
        description="Accuracy of a checkpoint on ListOps TSV files (original, LRA or ours) "
        "and/or on the standard suite of splits.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (or its files)")
    p.add_argument("--data", nargs="+", default=[], metavar="FILE.tsv", help="TSV files")
    p.add_argument(
        "--splits",
        metavar="NAMES",
        help="'standard' (every split of the suite but train) or comma-separated split names",
    )
    p.add_argument(
        "--limit", type=int, help="take only the first N examples of each split and data file"
    )
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    p.add_argument("--seed", type=int, default=0, help="seed of the model's draws (default 0)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per batch (default 64)")
    p.add_argument(
        "--bucket-width",
        type=int,
        default=DEFAULT_BUCKET_WIDTH,
        help="tokens per length bucket in the per-split report (default 100)",
    )
    p.add_argument(
        "--alignment",
        choices=["sample", "rank", "random", "kbest"],
        help="beam alignment at inference (default: the checkpoint's)",
    )
    p.add_argument(
        "--beam-size", type=int, help="beam size at inference (default: the checkpoint's)"
    )
    p.add_argument(
        "--chunk-width", type=int, help="chunk width at inference (default: the checkpoint's)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--record",
        action="store_true",
        help="also store each split's accuracy in the checkpoint's metadata (metrics per split)",
    )
    return p


def _split_names(spec: str) -> list[str]:
    from rir_core.generate import SPLITS

    if spec == "standard":
        return [name for name in SPLITS if name != "train"]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in SPLITS]
    if unknown or not names:
        raise _UsageError(
            f"unknown split {', '.join(unknown) or repr(spec)}; use 'standard' or names "
            f"from {', '.join(SPLITS)}"
        )
    return names


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise _UsageError("--device cuda was asked for, but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise _UsageError(f"--device must be cpu, cuda or auto, not {name!r}") from None


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from rir_core.checkpoint import load_checkpoint

    if not args.data and not args.splits:
        raise _UsageError("give --data FILE.tsv [...] and/or --splits standard")
    for flag in ("batch_size", "bucket_width", "limit", "beam_size", "chunk_width"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise _UsageError(f"--{flag.replace('_', '-')} must be at least 1, not {value}")
    splits = _split_names(args.splits) if args.splits else []
    device = _pick_device(args.device)
    model, info = load_checkpoint(args.checkpoint, device=device)
    settings = {
        k: v
        for k, v in (
            ("alignment", args.alignment),
            ("beam_size", args.beam_size),
            ("chunk_width", args.chunk_width),
        )
        if v is not None
    }
    try:
        model.settings(**settings)
    except ValueError as err:
        raise _UsageError(str(err).rstrip(".")) from None
    show = not args.no_progress
    out: dict[str, Any] = {
        "checkpoint": str(info.path),
        "seed": args.seed,
        "settings": {k: str(v) for k, v in settings.items()},
    }
    if args.data:
        files: dict[str, Any] = {}
        for path in args.data:
            if not os.path.isfile(path):
                raise _UsageError(f"data file {path} does not exist")
            examples = read_tsv(path)[: args.limit]  # None keeps every row
            res = evaluate_examples(
                model,
                examples,
                args.seed,
                args.batch_size,
                bucket_width=args.bucket_width,
                progress=show,
                desc=Path(path).name,
                **settings,
            )
            files[path] = {"accuracy": res["accuracy"], "n": res["n"], "buckets": res["buckets"]}
            print(f"{path}\taccuracy {res['accuracy']:.4f}\tn {res['n']}", flush=True)
            _print_buckets(res)
        out["files"] = files
    if splits:
        from rir_core.generate import load_split

        results: dict[str, Any] = {}
        for name in splits:
            examples = load_split(name, n=args.limit, progress=show)
            res = evaluate_examples(
                model,
                examples,
                args.seed,
                args.batch_size,
                bucket_width=args.bucket_width,
                progress=show,
                desc=name,
                **settings,
            )
            results[name] = res
            print(f"{name}\taccuracy {res['accuracy']:.4f}\tn {res['n']}", flush=True)
            _print_buckets(res)
        out["splits"] = results
    if args.record and splits:
        record_metrics(model, info, out, args.limit)
    return out


def _print_buckets(res: dict[str, Any]) -> None:
    """One indented line per length bucket, under the file's or split's accuracy line."""
    for bucket, b in res["buckets"].items():
        print(f"  {bucket:>11} tokens\taccuracy {b['accuracy']:.4f}\tn {b['n']}", flush=True)


def record_metrics(
    model: torch.nn.Module, info: Any, out: dict[str, Any], limit: int | None
) -> None:
    """Store the splits' accuracies in the checkpoint's sidecar (``metadata.metrics``), with the
    settings, seed and limit they were measured with; the rewrite is atomic, weights unchanged."""
    from rir_core.checkpoint import RESUME_JSON_FILE, save_checkpoint

    folder = Path(info.path)
    if not folder.is_dir():
        raise _UsageError(f"--record needs a checkpoint directory, and {folder} is a file")
    if (folder / RESUME_JSON_FILE).exists():
        raise _UsageError(
            f"--record does not rewrite {folder}: it holds a run's training state (a last/ "
            "checkpoint); record into its best/ or a copy"
        )
    metadata = dict(info.metadata)
    metrics = dict(metadata.get("metrics") or {})
    for name, res in out["splits"].items():
        metrics[name] = {
            "accuracy": res["accuracy"],
            "n": res["n"],
            "seed": out["seed"],
            "settings": out["settings"],
            "limit": limit,
        }
    metadata["metrics"] = metrics
    save_checkpoint(info.path, model, metadata)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m rir_core.evaluate``; returns the exit status."""
    from rir_core.checkpoint import CheckpointError

    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        out = _run(args)
        if args.json:
            from rir_core.data import atomic_write_text

            atomic_write_text(args.json, [json.dumps(out, indent=2)])
    except (_UsageError, CheckpointError, DataFormatError, OSError) as err:
        print(cli_error(parser.prog, err), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
