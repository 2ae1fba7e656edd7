"""Do the trees over a partial chunk build the lists that the cut leaves open? (issue #16)

A cut at chunk width W splits some lists: ``[MAX 2 [SM 3 4 | 5 ] 1 ]`` leaves the SM list open
in the first chunk and closes it in the second. Inside each chunk, the inner recursion builds a
binary tree over the chunk's tokens. A tree that follows the brackets has a node for every
complete list in the chunk, and, for every list the cut splits (other than the root list, whose
spans are the whole chunks), a node for its **open part** in the first chunk (from its
operator to the cut: ``[SM 3 4``) and for its **pending part** in the second (from the cut to
its ``]``: ``5 ]``). This report traces each input (beam of the largest final weight, seed 0)
and counts how many of those spans are nodes of its tree, for the inputs the model gets right
and those it gets wrong:

    python tests/partial_tree_report.py --checkpoint pretrained/rir_ebt_grc --n 1000

The inputs are ``--n`` generated expressions of 45-60 tokens (one cut at W 30; generator seed
``--seed``, default 61001, the inputs of ``tests/sdepth_report.py``). About two minutes of CPU
for 1,000 inputs (one traced run each). If wrong answers came from trees that do not follow the
open lists, the open and pending rows would be lower for wrong answers than for right ones.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composition_depth import cut_positions, list_spans  # noqa: E402

from app.alignment_lab import wilson_interval  # noqa: E402

Span = tuple[int, int]  # [first, last) token positions
KINDS = ("complete_first", "complete_second", "open_first", "pending_second")


def cut_constituents(tokens: Sequence[str], cut: int) -> dict[str, list[Span]]:
    """The spans a bracket-following tree has as nodes, by kind, for one cut after ``cut``
    tokens: complete lists in the first and second chunk, and the open and pending parts of
    the lists the cut splits (the root list excluded: its parts are the chunks themselves)."""
    out: dict[str, list[Span]] = {k: [] for k in KINDS}
    for start, end, _ in list_spans(tokens):  # end: the index of the list's "]"
        if end < cut:
            out["complete_first"].append((start, end + 1))
        elif start >= cut:
            out["complete_second"].append((start, end + 1))
        elif start > 0:
            out["open_first"].append((start, cut))
            out["pending_second"].append((cut, end + 1))
    return out


def found(tree_node_spans: set[Span], wanted: dict[str, list[Span]]) -> dict[str, tuple[int, int]]:
    """Per kind: (spans that are nodes of the tree, spans wanted)."""
    return {k: (sum(s in tree_node_spans for s in v), len(v)) for k, v in wanted.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/partial_tree_report.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    p.add_argument("--chunk-width", type=int, default=30)
    p.add_argument("--n", type=int, default=1000, help="generated inputs (default 1,000)")
    p.add_argument("--seed", type=int, default=61001, help="generator seed (default 61001)")
    args = p.parse_args(argv)

    from rir_core.checkpoint import load_checkpoint
    from rir_core.generate import Recipe, generate
    from rir_core.trace import trace_model, tree_spans

    w = args.chunk_width
    model, _ = load_checkpoint(args.checkpoint)
    model.eval()
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # hits, wanted
    by_open: dict[bool, list[int]] = defaultdict(lambda: [0, 0])  # right, inputs
    right_all = inputs = 0
    for ex in generate(Recipe(45, 60), args.n, seed=args.seed):
        tokens = ex.text.split()
        cuts = cut_positions(len(tokens), w)
        if len(cuts) != 1:
            continue
        trace = trace_model(model, ex.text, seed=0, chunk_width=w)
        beams = trace.final_beams
        best = max(range(len(beams)), key=lambda k: beams[k]["weight"])
        have = set(tree_spans(beams[best]["tree"]))
        right = trace.prediction == ex.label
        inputs += 1
        right_all += right
        hits = found(have, cut_constituents(tokens, cuts[0]))
        for kind, (h, t) in hits.items():
            for group in ("all", "right" if right else "wrong"):
                counts[(kind, group)][0] += h
                counts[(kind, group)][1] += t
        h, t = hits["open_first"]
        if t:
            by_open[h == t][0] += right
            by_open[h == t][1] += 1
    print(
        f"{inputs} inputs of 45-60 tokens cut once at W {w} (seed {args.seed}): "
        f"{args.checkpoint}, accuracy {right_all / max(inputs, 1):.3f}"
    )
    print(f"{'spans that are tree nodes':26s} {'all':>16s} {'right answers':>16s} {'wrong':>16s}")
    for kind in KINDS:
        cells = []
        for group in ("all", "right", "wrong"):
            h, t = counts[(kind, group)]
            cells.append(f"{h / t:.3f} ({t:5d})" if t else "-")
        print(f"{kind:26s} " + " ".join(f"{c:>16s}" for c in cells))
    for built, label in ((True, "every open part built"), (False, "some open part not built")):
        r, n = by_open[built]
        if n:
            a, b = (x / 100 for x in wilson_interval(r, n))
            print(f"{label:26s} inputs {n:5d}, accuracy {r / n:.3f} ({a:.3f}-{b:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
