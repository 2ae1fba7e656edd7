"""How deep must chunk composition be right for a length split to be solvable? (issue #16)

At chunk width W the outer recursion cuts a long input at fixed positions, whatever its brackets.
Every list whose span contains a cut ("crosses" it) gets its value only through the composition of
chunk roots at a level above; every other list is reduced inside one chunk. This script asks how
much of that composition a model must get right. For each input it replaces the value of every
crossing list nested deeper than ``d`` (the root list is depth 1) by a random digit, and counts how
often the expression's value is unchanged:

- ``d = 0``: every crossing list is noise, the model can only guess (about 10%);
- ``d = 3``: lists crossing a cut must be right down to depth 3, deeper ones may be garbage;
- ``d = inf``: exact composition, 100%.

The smallest ``d`` that reaches a target accuracy is how many nested lists a model must compose
correctly across chunk boundaries: an upper bound on what a model that only composes shallower
lists can score (it is a bound, not a prediction: a wrong deeper value is often close to the right
one, a random digit is not). The script also prints, for chunked inputs, the lists open at each
cut and how many lists opened in an earlier chunk each chunk closes (its "pops"), the work one
composition of two chunk roots has to do.

    python tests/composition_depth.py --splits train,len_200_300,len_900_1000 --n 1000

Pure Python over the standard splits (generated once and cached); a minute or two.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cut_report import open_at_cut  # noqa: E402

from rir_core.generate import load_split  # noqa: E402
from rir_core.listops import apply_operator, evaluate_tokens  # noqa: E402
from rir_core.outer import chunk_sizes  # noqa: E402

#: The depths the report prints (``None``: exact composition).
DEPTHS: tuple[int | None, ...] = (0, 1, 2, 3, 4, 5, 6, 8, 10, None)


def cut_positions(n: int, width: int) -> list[int]:
    """Token counts before each level-0 cut (a cut at ``c`` splits ``tokens[:c] | tokens[c:]``).
    Higher levels join whole level-0 chunks, so their cuts are among these."""
    return list(itertools.accumulate(chunk_sizes(n, width)[:-1]))


def list_spans(tokens: Sequence[str]) -> list[tuple[int, int, int]]:
    """``(start, end, depth)`` of every list: its ``[OP`` and ``]`` token indices, root depth 1."""
    spans, stack = [], []
    for i, t in enumerate(tokens):
        if t.startswith("["):
            stack.append(i)
        elif t == "]":
            start = stack.pop()
            spans.append((start, i, len(stack) + 1))
    return spans


def crosses(start: int, end: int, cuts: Sequence[int]) -> bool:
    """Whether a list spanning tokens ``start..end`` holds a cut inside it."""
    return any(start < c <= end for c in cuts)


def value_with_noise(
    tokens: Sequence[str], cuts: Sequence[int], depth: int | None, rng: random.Random
) -> int:
    """The expression's value when every list that crosses a cut at nesting depth > ``depth`` is
    replaced by a uniform random digit (``depth`` None: no noise, the true value)."""
    stack: list[tuple[str, int, list[int]]] = []  # (operator, start index, argument values)
    result = None
    for i, t in enumerate(tokens):
        if t.startswith("["):
            stack.append((t[1:], i, []))
            continue
        if t != "]":
            stack[-1][2].append(int(t))
            continue
        op, start, args = stack.pop()
        v = apply_operator(op, args)
        if depth is not None and len(stack) + 1 > depth and crosses(start, i, cuts):
            v = rng.randrange(10)
        if stack:
            stack[-1][2].append(v)
        else:
            result = v
    if result is None:
        raise ValueError("not a list expression")
    return result


def pops_per_chunk(tokens: Sequence[str], cuts: Sequence[int]) -> list[int]:
    """For each chunk after the first: how many lists opened in an earlier chunk it closes."""
    pops = [0] * (len(cuts) + 1)
    for start, end, _ in list_spans(tokens):
        chunk = bisect.bisect_right(cuts, end)  # the chunk holding the closing bracket
        if bisect.bisect_right(cuts, start) != chunk:
            pops[chunk] += 1
    return pops[1:]


def open_at_cuts(tokens: Sequence[str], cuts: Sequence[int]) -> list[int]:
    """How many lists are open at each cut."""
    return [len(open_at_cut(list(tokens), c)) for c in cuts]


def _share(counter: Counter[int], top: int) -> str:
    n = sum(counter.values()) or 1
    cells = [f"{k}: {counter[k] / n:.0%}" for k in range(top)]
    cells.append(f"{top}+: {sum(v for k, v in counter.items() if k >= top) / n:.0%}")
    return ", ".join(cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/composition_depth.py", description=__doc__)
    p.add_argument("--splits", default="train,len_200_300,len_500_600,len_900_1000")
    p.add_argument("--n", type=int, default=1000, help="examples per split (default 1,000)")
    p.add_argument("--chunk-width", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    w = args.chunk_width
    names = ["exact" if d is None else f"d<={d}" for d in DEPTHS]
    print(f"W {w}: share of labels unchanged when lists crossing a cut deeper than d are noise")
    print(f"{'split':14s} {'chunked':>7s} " + " ".join(f"{n:>6s}" for n in names))
    shapes = []
    for split in args.splits.split(","):
        rng = random.Random(args.seed)
        examples = [ex.text.split() for ex in load_split(split, n=args.n)]
        # (tokens, cuts, true value) of every chunked input
        chunked = [(t, c, evaluate_tokens(t)) for t in examples if (c := cut_positions(len(t), w))]
        if not chunked:
            print(f"{split:14s} {0:7d}  (no input is chunked at W {w})")
            continue
        kept = [
            sum(value_with_noise(t, cuts, d, rng) == truth for t, cuts, truth in chunked)
            / len(chunked)
            for d in DEPTHS
        ]
        print(f"{split:14s} {len(chunked):7d} " + " ".join(f"{k:6.1%}" for k in kept))
        opened, pops = Counter(), Counter()
        for t, cuts, _ in chunked:
            opened.update(open_at_cuts(t, cuts))
            pops.update(pops_per_chunk(t, cuts))
        shapes.append((split, opened, pops))
    for split, opened, pops in shapes:
        print(f"\n{split}: lists open at a cut   {_share(opened, 8)}")
        print(f"{split}: lists a chunk closes that opened in an earlier chunk   {_share(pops, 8)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
