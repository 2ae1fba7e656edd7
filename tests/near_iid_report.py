"""Length statistics of near-IID test sets: the original file against our draws (issue #16).

The original near-IID test file (Nangia & Bowman's ``test_d20s.tsv``) is a random tenth of one
set of about 100,000 distinct expressions. Removing duplicates over a set that large thins out
the short expressions (there are only 400 distinct four-token ones), so the file is longer than
a small distinct draw of the same recipe. This report puts the numbers side by side: each TSV
file given, our ``test_iid`` split (2,000 of 100,000 distinct draws), and the first 2,000
distinct draws of the same recipe and seed (how ``test_iid`` was drawn before session 20):

    python tests/near_iid_report.py [FILE.tsv ...]

Columns: rows, median tokens, share of rows with 45 tokens or more (chunked at W 30), share
longer than 100 tokens (beyond the training lengths), share of 4-5-token rows, median depth.
A file that cannot be read gets one sentence and exit status 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rir_core.data import DataFormatError, Example, read_tsv  # noqa: E402
from rir_core.generate import SPLITS, generate, load_split  # noqa: E402
from rir_core.listops import depth, parse  # noqa: E402

COLUMNS = ("rows", "median", ">=45", ">100", "4-5 tok", "depth")


def row(examples: Sequence[Example]) -> tuple[int, float, float, float, float, float]:
    """(rows, median tokens, share >= 45, share > 100, share of 4-5 tokens, median depth)."""
    if not examples:
        raise ValueError("no rows")
    lengths = [len(e.tokens) for e in examples]
    n = len(lengths)
    return (
        n,
        float(statistics.median(lengths)),
        sum(k >= 45 for k in lengths) / n,
        sum(k > 100 for k in lengths) / n,
        sum(4 <= k <= 5 for k in lengths) / n,
        float(statistics.median(depth(parse(" ".join(e.tokens), len(e.tokens))) for e in examples)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", help="TSV files (the original layout reads as it is)")
    args = parser.parse_args(argv)
    sets: list[tuple[str, list[Example]]] = []
    for path in args.files:
        try:
            examples = read_tsv(path)
        except (OSError, DataFormatError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        if not examples:
            print(f"{path} has no rows.", file=sys.stderr)
            return 2
        sets.append((path, examples))
    spec = SPLITS["test_iid"]
    sets.append((f"test_iid ({spec.count:,} of {spec.pool:,} distinct)", load_split("test_iid")))
    first = generate(spec.recipe, spec.count, spec.seed)
    sets.append((f"first {spec.count:,} distinct draws", first))
    width = max(len(name) for name, _ in sets)
    print(f"{'set':<{width}}  " + "  ".join(f"{c:>7}" for c in COLUMNS))
    for name, examples in sets:
        n, med, chunked, long_, short, med_depth = row(examples)
        print(
            f"{name:<{width}}  {n:>7}  {med:>7.1f}  {chunked:>7.1%}  {long_:>7.1%}  "
            f"{short:>7.1%}  {med_depth:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
