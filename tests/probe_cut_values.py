"""Which half of a cut list does the model lose? Probes of the two chunk roots at a depth-1 cut.

Take inputs of 1.5 W to 2 W tokens whose one cut (after token W) falls between two top-level
arguments of the root list, so each chunk holds complete arguments only:
``[SM 3 [MAX 2 5 ] 4 | 7 [MIN 0 1 ] ]``. The first chunk's root must carry the root list's value
so far (its *partial* value: SM over 3, 5, 4), the second chunk's root the value of the arguments
it adds (its *pending* value: SM over 7, 0) before the closing bracket, and the level above must
combine the two. Per root operator, this prints the model's accuracy at W on these inputs and how
well a linear probe (80% to fit, 20% to score) reads each value from each level-0 root (beam 0),
beside the majority class. MED has no single pending value and gets the accuracy only. A last
line probes, over all four operators, whether the second chunk knows which list it continues: the
root list's operator from the second root, and from the mean of that chunk's leaf vectors (after
the bidirectional S4D and the leaf transform).

    python tests/probe_cut_values.py --checkpoint pretrained/rir_ebt_grc --chunk-width 8

``--straddling`` keeps the inputs whose cut falls inside an argument of the root list as well
(``[SM 3 [MAX 2 | 5 ] 4 ]``): the partial and pending values are then those of the arguments
wholly before and wholly after the cut (3; 4), and the straddling argument is in neither, so a
deeper cut asks the same question of the root list (at W 30 nearly every cut is deeper).
``--level 2`` asks it one level down, of the list the cut falls inside (``[MAX 2 | 5 ]`` above:
partial 2, pending 5), grouped by that list's operator; the accuracy column is still the whole
answer's.

Up to 1,500 inputs per operator from 30,000 generated expressions (seed 4242). A few minutes of
CPU at W 8.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cut_report import lists_open_at_cut, two_chunk_lengths  # noqa: E402
from probe_chunk_roots import capture_level0, linear_probe  # noqa: E402

from rir_core.checkpoint import load_checkpoint  # noqa: E402
from rir_core.generate import Recipe, generate  # noqa: E402
from rir_core.listops import evaluate  # noqa: E402

VALUE = {"[SM": lambda a: sum(a) % 10, "[MAX": max, "[MIN": min}


def list_arguments(tokens: list[str], start: int = 0) -> list[tuple[int, int]]:
    """(first, last) token index of each argument of the list opened at ``start``."""
    args: list[tuple[int, int]] = []
    depth = 0
    for i in range(start, len(tokens)):
        t = tokens[i]
        if t.startswith("["):
            depth += 1
            if depth == 2:
                first = i
        elif t == "]":
            depth -= 1
            if depth == 1:
                args.append((first, i))
            elif depth == 0:
                return args
        elif depth == 1:
            args.append((i, i))
    return args


def top_level_arguments(tokens: list[str]) -> list[tuple[int, int]]:
    """(first, last) token index of each argument of the root list."""
    return list_arguments(tokens, 0)


def split_values(
    tokens: list[str], cut: int, straddling: bool = False, level: int = 1
) -> tuple[list[int], list[int]] | None:
    """The values of the arguments wholly before and wholly after ``cut`` of the ``level``-th
    list open at the cut (1: the root list), or None when there is no such list or either side
    has none, or when an argument straddles the cut (unless ``straddling``: then that argument's
    value is on neither side)."""
    open_lists = lists_open_at_cut(tokens, cut)
    if len(open_lists) < level:
        return None
    args = list_arguments(tokens, open_lists[level - 1])
    if not straddling and any(first < cut <= last for first, last in args):
        return None
    before = [evaluate(" ".join(tokens[a : b + 1])) for a, b in args if b < cut]
    after = [evaluate(" ".join(tokens[a : b + 1])) for a, b in args if a >= cut]
    return (before, after) if before and after else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/probe_cut_values.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    p.add_argument("--chunk-width", type=int, default=8)
    p.add_argument("--per-op", type=int, default=1500)
    p.add_argument(
        "--straddling",
        action="store_true",
        help="also cuts inside an argument of the root list (deeper cuts): that argument's "
        "value is in neither the partial nor the pending value",
    )
    p.add_argument(
        "--level",
        type=int,
        default=1,
        help="probe the LEVEL-th list open at the cut (1: the root list; 2: the list the cut "
        "falls inside, one level down; implies --straddling when above 1)",
    )
    args = p.parse_args(argv)
    if args.level < 1:
        p.error("--level must be at least 1")
    if args.level > 1:
        args.straddling = True
    w = args.chunk_width
    lo, hi = two_chunk_lengths(w)
    rows: dict[str, list[tuple[str, list[int], list[int]]]] = defaultdict(list)
    for ex in generate(Recipe(lo, hi), 30_000, seed=4242):
        tokens = ex.text.split()
        split = split_values(tokens, w, args.straddling, args.level)
        if split is None:
            continue
        op = tokens[lists_open_at_cut(tokens, w)[args.level - 1]]  # that list's operator
        if len(rows[op]) < args.per_op:
            rows[op].append((ex.text, *split))
    model, _ = load_checkpoint(args.checkpoint)
    model.eval()
    seen = capture_level0(model)  # per level-0 call: (beam-0 roots (N, D), leaves (N, W, D))
    op_roots: list[torch.Tensor] = []  # every second root, all operators
    op_leaves: list[torch.Tensor] = []  # the mean of every second chunk's leaves
    op_labels: list[int] = []
    kind = "cuts at any depth" if args.straddling else "depth-1 cuts"
    which = "the root list" if args.level == 1 else f"list {args.level} open at the cut"
    print(f"{kind} at W {w}, inputs of {lo}-{hi} tokens, {which}: {args.checkpoint}")
    name = "root" if args.level == 1 else "list"
    print(f"{name}      n    acc  partial  (major)  pending  (major)")
    for label, op in enumerate(sorted(rows)):
        items = rows[op]
        first, second, right = [], [], 0
        for s in range(0, len(items), 250):
            batch = items[s : s + 250]
            seen.clear()
            ids, mask, lengths = model.encode_tokens([t.split() for t, _, _ in batch])
            # capture_level0 keeps a level's chunks in plan order (example by example, chunk by
            # chunk) even when they run in groups, so rows 2i and 2i+1 are example i's chunks.
            with torch.no_grad():
                logits = model(ids, mask, 0, lengths=lengths, chunk_width=w)
            preds = logits.argmax(-1).tolist()
            right += sum(pr == evaluate(t) for pr, (t, _, _) in zip(preds, batch, strict=True))
            roots, leaves = seen[0]
            roots = roots.view(len(batch), 2, -1)
            first.append(roots[:, 0])
            second.append(roots[:, 1])
            leaves = leaves.view(len(batch), 2, leaves.shape[1], -1)
            for i, (text, _, _) in enumerate(batch):
                op_leaves.append(leaves[i, 1, : len(text.split()) - w].mean(0))
        op_roots += second
        op_labels += [label] * len(items)
        line = f"{op[1:]:5s} {len(items):5d} {right / len(items):6.3f}"
        if op in VALUE:
            f = VALUE[op]
            a1, m1 = linear_probe(torch.cat(first).float(), [f(b) for _, b, _ in items])
            a2, m2 = linear_probe(torch.cat(second).float(), [f(a) for _, _, a in items])
            line += f" {a1:8.3f} {m1:8.3f} {a2:8.3f} {m2:8.3f}"
        print(line, flush=True)
    # Shuffle so that the probe's 80/20 split mixes the operators.
    perm = torch.randperm(len(op_labels), generator=torch.Generator().manual_seed(0)).tolist()
    y = [op_labels[i] for i in perm]
    a_root, major = linear_probe(torch.cat(op_roots)[perm].float(), y)
    a_leaves, _ = linear_probe(torch.stack(op_leaves)[perm].float(), y)
    print(
        f"{which}'s operator from the second root {a_root:.3f}, from the mean of its "
        f"leaves {a_leaves:.3f} (majority {major:.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
