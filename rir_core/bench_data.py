"""Time the ListOps generator (not a test): ``python -m rir_core.bench_data [--train-n N]``.

Times, on one core:

1. 2,000 distinct expressions of 900-1,000 tokens (the ``len_900_1000`` recipe), where plain
   rejection sampling would need minutes;
2. ``--train-n`` (default 10,000) expressions of the training recipe (2-100 tokens);
3. for scale, plain rejection sampling of 20 expressions of 900-1,000 tokens (skipped with
   ``--no-rejection``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from rir_core.generate import SPLITS, Recipe, generate


def _timed(label: str, recipe: Recipe, count: int, seed: int, method: str = "dp") -> float:
    start = time.perf_counter()
    examples = generate(recipe, count, seed, method=method)
    seconds = time.perf_counter() - start
    mean_len = sum(len(ex) for ex in examples) / max(len(examples), 1)
    print(
        f"{label:<40} {count:>7,} expressions  {seconds:8.2f} s  "
        f"({count / seconds:,.0f}/s, mean {mean_len:.0f} tokens)",
        flush=True,
    )
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    """Run the timings and print one line each."""
    parser = argparse.ArgumentParser(prog="python -m rir_core.bench_data", description=__doc__)
    parser.add_argument("--train-n", type=int, default=10_000, help="train-recipe count")
    parser.add_argument("--no-rejection", action="store_true", help="skip the rejection timing")
    args = parser.parse_args(argv)
    if args.train_n <= 0:
        parser.error(f"--train-n must be positive, got {args.train_n}")
    _timed("DP sampler, 900-1000 tokens", SPLITS["len_900_1000"].recipe, 2_000, seed=6)
    _timed("DP sampler, train recipe (2-100 tokens)", SPLITS["train"].recipe, args.train_n, seed=1)
    if not args.no_rejection:
        _timed(
            "rejection sampler, 900-1000 tokens", Recipe(900, 1000), 20, seed=6, method="rejection"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
