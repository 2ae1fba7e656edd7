"""Which chunk compositions fail? Accuracy of two-chunk inputs by what the cut leaves open.

At chunk width W, an input of 1.5 W to 2 W tokens is cut once, after token W. The first chunk
ends with some lists still open (the operators on its stack); the second chunk's root must stand
for the rest of them (their remaining arguments and closing brackets), and the level above must
compose the two roots. This report groups fresh two-chunk inputs by

- ``open``: the operators left open at the cut, outermost first (``SM/MAX``: an SM list holds an
  open MAX list), the only ones whose values cross the boundary;
- ``depth``: how many lists are open at the cut;

and prints the model's accuracy on each group at W beside the same inputs unchunked (one chunk).
A group whose chunked accuracy sits near chance (10%) while the unchunked one is near 100% names a
composition the model has not learned.

    python tests/cut_report.py --checkpoint pretrained/rir_ebt_grc --chunk-width 8

``--s4d-per-chunk`` adds a column: the chunked accuracy when the pre-chunk S4D (SPEC 5) runs on
each chunk alone, so that no context crosses the cut. The paper puts the S4D before the chunking
to give every chunk its context; where this column equals the chunked one, the model composes
through the chunk roots alone and does not use that context.

The inputs are 4,000 generated expressions of 1.5 W to 2 W tokens (seed 777) unless ``--data``
names a TSV file (rows of other lengths are skipped). A few minutes of CPU at W 8.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from app.alignment_lab import wilson_interval  # noqa: E402
from rir_core.checkpoint import load_checkpoint  # noqa: E402
from rir_core.data import read_tsv  # noqa: E402
from rir_core.generate import Recipe, generate  # noqa: E402
from rir_core.listops import evaluate  # noqa: E402
from rir_core.outer import chunk_sizes  # noqa: E402


def lists_open_at_cut(tokens: list[str], cut: int) -> list[int]:
    """Where the lists still open after ``tokens[:cut]`` were opened, outermost first."""
    stack: list[int] = []
    for i, t in enumerate(tokens[:cut]):
        if t.startswith("["):
            stack.append(i)
        elif t == "]":
            stack.pop()
    return stack


def open_at_cut(tokens: list[str], cut: int) -> list[str]:
    """The operators (without ``[``) still open after ``tokens[:cut]``, outermost first."""
    return [tokens[i][1:] for i in lists_open_at_cut(tokens, cut)]


def group_keys(tokens: list[str], cut: int) -> list[str]:
    """The report rows an input of two chunks (cut after ``cut`` tokens) counts in."""
    stack = open_at_cut(tokens, cut)
    return [
        "all",
        f"depth {len(stack)}",
        f"outermost open {stack[0] if stack else '-'}",
        f"open {'/'.join(stack) if stack else '-'}",
    ]


def two_chunk_lengths(width: int) -> tuple[int, int]:
    """The token counts cut exactly once at ``width``: 1.5 W (rounded up) to 2 W."""
    return -(-3 * width // 2), 2 * width


@contextlib.contextmanager
def s4d_per_chunk(model, cut: int) -> Iterator[None]:
    """Within this block the model's pre-chunk S4D runs on ``tokens[:cut]`` and ``tokens[cut:]``
    separately, so no context crosses the cut; chunking and trees are unchanged. Every input
    must be longer than ``cut`` (two-chunk inputs are)."""
    s4d = model.s4d
    if s4d is None:  # a model without the S4D layer: nothing crosses the cut anyway
        yield
        return
    forward = s4d.forward

    def split(x: torch.Tensor, mask: torch.Tensor, recurrent: bool = False) -> torch.Tensor:
        if not bool(mask[:, cut:].any(1).all()):
            raise ValueError(f"every input must be longer than the cut ({cut} tokens)")
        head = forward(x[:, :cut], mask[:, :cut], recurrent)  # (B, cut, D)
        tail = forward(x[:, cut:], mask[:, cut:], recurrent)  # (B, L - cut, D)
        return torch.cat([head, tail], 1)

    s4d.forward = split
    try:
        yield
    finally:
        del s4d.forward  # the class's method again


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/cut_report.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    p.add_argument("--chunk-width", type=int, default=8)
    p.add_argument("--data", help="a TSV file (default: 4,000 generated two-chunk inputs)")
    p.add_argument("--n", type=int, default=4000, help="generated inputs (default 4,000)")
    p.add_argument("--min-rows", type=int, default=40, help="hide smaller groups (default 40)")
    p.add_argument(
        "--s4d-per-chunk",
        action="store_true",
        help="add the chunked accuracy with the S4D run on each chunk alone",
    )
    args = p.parse_args(argv)
    w = args.chunk_width
    lo, hi = two_chunk_lengths(w)
    if args.data:
        texts = [ex.text for ex in read_tsv(args.data) if lo <= len(ex.text.split()) <= hi]
    else:
        texts = [ex.text for ex in generate(Recipe(lo, hi), args.n, seed=777)]
    if not texts:
        print(f"no input of {lo}-{hi} tokens (two chunks at W {w}).")
        return 1
    model, _ = load_checkpoint(args.checkpoint)
    model.eval()
    chunked = model.predict(texts, seed=0, chunk_width=w)
    whole = model.predict(texts, seed=0, chunk_width=10 * hi)
    alone = chunked
    if args.s4d_per_chunk:
        with s4d_per_chunk(model, w):  # two-chunk inputs: the cut is after token W
            alone = model.predict(texts, seed=0, chunk_width=w)
    # right chunked, right whole, right with the S4D per chunk, n
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for text, pc, pw, pa in zip(texts, chunked, whole, alone, strict=True):
        tokens = text.split()
        truth = evaluate(text)
        cut = chunk_sizes(len(tokens), w)[0]
        for key in group_keys(tokens, cut):
            r = rows[key]
            r[0] += pc == truth
            r[1] += pw == truth
            r[2] += pa == truth
            r[3] += 1
    print(f"{len(texts)} inputs of {lo}-{hi} tokens, two chunks at W {w}: {args.checkpoint}")
    extra = f" {'S4D per chunk':>13s}" if args.s4d_per_chunk else ""
    print(f"{'group':24s} {'n':>5s} {'chunked':>8s} {'95% interval':>14s} {'unchunked':>9s}{extra}")
    for key in sorted(rows, key=lambda k: (k != "all", k.split()[0], k)):
        right, right_whole, right_alone, n = rows[key]
        if n < args.min_rows:
            continue
        a, b = (x / 100 for x in wilson_interval(right, n))  # percent -> fraction
        extra = f" {right_alone / n:13.3f}" if args.s4d_per_chunk else ""
        print(f"{key:24s} {n:5d} {right / n:8.3f} {a:6.3f}-{b:.3f} {right_whole / n:9.3f}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
