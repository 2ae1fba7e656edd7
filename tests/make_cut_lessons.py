"""Write a "cut lesson" for the W 8 diagnostic of issue #16: two-chunk inputs whose one cut leaves
exactly a given number of lists open.

Composition across a chunk boundary is learned one case at a time (docs/model_card.md, "Which
compositions fail"): a list cut once, then a list cut inside another, ... each in a few hundred
steps when its examples are dense. A lesson file holds generated expressions of 1.5 W to 2 W
tokens (two chunks at W) whose cut after token W leaves ``--open`` lists open; with
``--open 1`` only cuts that fall between two whole arguments of the root list (the D1 lesson).
The inputs of ``tests/cut_report.py`` and ``tests/probe_cut_values.py`` are left out, so both
stay held out. Labels are computed, never read.

    python tests/make_cut_lessons.py --open 1 --out d1.tsv                 # 17,465 rows
    python tests/make_cut_lessons.py --open 2 --n 30000 --seed 6161 --out d2.tsv
    python -m rir_core.train --preset paper --init-from pretrained/rir_ebt_grc --chunk-width 8 \\
        --train-file d1.tsv --dev-file dev.tsv --lr 5e-4 --eval-every 100 --max-steps 500

(``--dev-out`` writes a held-out set of the same kind from ``cut_report``'s inputs.)
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cut_report import open_at_cut, two_chunk_lengths  # noqa: E402
from probe_cut_values import split_values  # noqa: E402

from rir_core.generate import Recipe, generate  # noqa: E402
from rir_core.listops import evaluate  # noqa: E402


def is_lesson(tokens: list[str], width: int, open_lists: int) -> bool:
    """Whether a two-chunk input belongs to the lesson: its cut leaves ``open_lists`` lists open
    (for 1: the cut falls between two whole arguments of the root list)."""
    if open_lists == 1:
        return split_values(tokens, width) is not None
    return len(open_at_cut(tokens, width)) == open_lists


def report_inputs(width: int) -> tuple[list[str], list[str]]:
    """The inputs the two reports score on (their default generator calls): those of
    ``probe_cut_values`` and those of ``cut_report``."""
    lo, hi = two_chunk_lengths(width)
    probes = [ex.text for ex in generate(Recipe(lo, hi), 30_000, seed=4242)]
    report = [ex.text for ex in generate(Recipe(lo, hi), 4_000, seed=777)]
    return probes, report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/make_cut_lessons.py", description=__doc__)
    p.add_argument("--open", type=int, required=True, help="lists left open at the cut (>= 1)")
    p.add_argument("--chunk-width", type=int, default=8)
    p.add_argument("--generate", type=int, default=120_000, help="expressions to draw from")
    p.add_argument("--n", type=int, help="keep at most N lesson rows (default all)")
    p.add_argument("--seed", type=int, default=5151)
    p.add_argument("--out", required=True, help="training TSV to write")
    p.add_argument("--dev-out", help="also write up to 600 held-out rows of the same lesson")
    args = p.parse_args(argv)
    if args.open < 1:
        p.error("--open must be at least 1: a cut with no list open needs no composition.")
    w = args.chunk_width
    lo, hi = two_chunk_lengths(w)
    probes, report = report_inputs(w)
    skip = set(probes) | set(report)
    rows = [
        ex.text
        for ex in generate(Recipe(lo, hi), args.generate, seed=args.seed)
        if ex.text not in skip and is_lesson(ex.text.split(), w, args.open)
    ]
    random.Random(args.seed).shuffle(rows)
    rows = rows[: args.n] if args.n else rows
    with open(args.out, "w") as f:
        f.writelines(f"{evaluate(t)}\t{t}\n" for t in rows)
    print(f"wrote {len(rows)} rows with {args.open} list(s) open at the cut to {args.out}")
    if args.dev_out:
        dev = [t for t in report if is_lesson(t.split(), w, args.open)][:600]
        with open(args.dev_out, "w") as f:
            f.writelines(f"{evaluate(t)}\t{t}\n" for t in dev)
        print(f"wrote {len(dev)} held-out rows to {args.dev_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
