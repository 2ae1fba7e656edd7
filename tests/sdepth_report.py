"""How deep must a chunked input be composed? Accuracy by the cut's sensitivity depth.

A cut at chunk width W leaves some lists open: they straddle the cut, outermost (the root list)
first. The number left open (``tests/cut_report.py``) overstates what the level above must
compose: in ``[MAX 9 [SM 3 | 4 ] ]`` the SM list is cut, but its value cannot change the answer
(a 9 is already there). The **sensitivity depth** of a cut counts the straddling lists, from the
root list down, whose value the answer depends on: list ``i`` counts if some value 0-9 put in
its place changes the answer, and the count stops at the first list that does not (below a list
whose value does not matter, nothing matters). An input's sensitivity depth is the largest over
its cuts. Depth 1: only the root list matters (its value is the answer); the input is right
without composing the straddling lists at all. Depth d: d nested lists must be composed across
the cut, each from a partial value in one root and a pending one in the next.

The report prints the model's accuracy at W by sensitivity depth, beside the same inputs run
whole (one chunk):

    python tests/sdepth_report.py --checkpoint pretrained/rir_ebt_grc --n 2000

The inputs are ``--n`` generated expressions of ``--min-tokens`` to ``--max-tokens`` tokens
(default 45-60: one cut at W 30; generator seed ``--seed``, default 61001). A minute of CPU for
2,000 inputs of 45-60 tokens.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composition_depth import cut_positions  # noqa: E402
from cut_report import lists_open_at_cut  # noqa: E402

from app.alignment_lab import wilson_interval  # noqa: E402
from rir_core.listops import CLOSE, apply_operator  # noqa: E402


def value_with(tokens: Sequence[str], opened_at: int, value: int) -> int:
    """The expression's value when the list opened at token ``opened_at`` is given ``value``
    instead of its own (``opened_at`` -1: nothing replaced)."""
    frames: list[tuple[int, str, list[int]]] = []  # (opening index, operator, arguments)
    result = -1
    for i, tok in enumerate(tokens):
        if tok == CLOSE:
            start, name, args = frames.pop()
            v = value if start == opened_at else apply_operator(name, args)
        elif tok.startswith("["):
            frames.append((i, tok[1:], []))
            continue
        else:
            v = int(tok)
        if frames:
            frames[-1][2].append(v)
        else:
            result = v
    return result


def cut_sensitivity(tokens: Sequence[str], cut: int) -> int:
    """How many of the lists straddling the cut, from the root list down, the answer depends on."""
    depth = 0
    for start in lists_open_at_cut(list(tokens), cut):
        if len({value_with(tokens, start, v) for v in range(10)}) == 1:
            break
        depth += 1
    return depth


def sensitivity_depth(tokens: Sequence[str], width: int) -> int:
    """The largest cut sensitivity over the cuts of the first outer level at chunk width
    ``width`` (0 for an input that is not chunked)."""
    return max((cut_sensitivity(tokens, c) for c in cut_positions(len(tokens), width)), default=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/sdepth_report.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    p.add_argument("--chunk-width", type=int, default=30)
    p.add_argument("--min-tokens", type=int, default=45)
    p.add_argument("--max-tokens", type=int, default=60)
    p.add_argument("--n", type=int, default=2000, help="generated inputs (default 2,000)")
    p.add_argument("--seed", type=int, default=61001, help="generator seed (default 61001)")
    p.add_argument("--cap", type=int, default=5, help="pool depths from CAP up (default 5)")
    args = p.parse_args(argv)

    from rir_core.checkpoint import load_checkpoint
    from rir_core.generate import Recipe, generate

    w = args.chunk_width
    examples = generate(Recipe(args.min_tokens, args.max_tokens), args.n, seed=args.seed)
    model, _ = load_checkpoint(args.checkpoint)
    model.eval()
    texts = [ex.text for ex in examples]
    chunked = model.predict(texts, seed=0, chunk_width=w)
    whole = model.predict(texts, seed=0, chunk_width=10 * args.max_tokens)
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # right chunked, whole, n
    for ex, pc, pw in zip(examples, chunked, whole, strict=True):
        depth = sensitivity_depth(ex.text.split(), w)
        key = f"{args.cap}+" if depth >= args.cap else str(depth)
        for k in ("all", key):
            rows[k][0] += pc == ex.label
            rows[k][1] += pw == ex.label
            rows[k][2] += 1
    print(
        f"{len(texts)} inputs of {args.min_tokens}-{args.max_tokens} tokens (seed {args.seed}),"
        f" W {w}: {args.checkpoint}"
    )
    print(
        f"{'sensitivity depth':18s} {'n':>5s} {'chunked':>8s} {'95% interval':>14s} {'whole':>6s}"
    )
    for key in sorted(rows, key=lambda k: (k != "all", int(k.rstrip("+")) if k != "all" else 0)):
        right, right_whole, n = rows[key]
        a, b = (x / 100 for x in wilson_interval(right, n))
        print(f"{key:18s} {n:5d} {right / n:8.3f} {a:6.3f}-{b:.3f} {right_whole / n:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
