"""What do chunk roots carry? Linear probes on the level-0 chunk roots of a checkpoint.

A chunk boundary cuts an expression anywhere, so a level-0 chunk's root (its beam 0) stands for
a partial expression, and the next level can compose it only from what the root carries. Per
chunk, from its tokens alone:

- ``pops``: how many lists that opened in earlier chunks it closes (capped at 3);
- ``pushes``: how many lists it leaves open (capped at 3);
- ``open_op``: the operator of the innermost list still open at its end (or none);
- ``value``: the value so far of that list when it is a MIN, MAX or SM list with arguments
  (its operator applied to its complete arguments inside the chunk).

Each is probed with a linear classifier (standardised features, Adam, 500 full-batch steps) on
80% of the chunks and scored on the other 20%, beside the same probe on the mean of the chunk's
leaf vectors (a bag of tokens in context) and the majority class. For scale, the same probe of
an expression's value from the root of the whole expression run unchunked.

    python tests/probe_chunk_roots.py --checkpoint pretrained/rir_ebt_grc --chunk-width 8

The inputs are 1,200 generated expressions of 12-40 tokens (seed 101) unless ``--data`` names a
TSV file. About a minute of CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rir_core.checkpoint import load_checkpoint  # noqa: E402
from rir_core.data import read_tsv  # noqa: E402
from rir_core.generate import Recipe, generate  # noqa: E402
from rir_core.listops import evaluate  # noqa: E402
from rir_core.outer import chunk_sizes  # noqa: E402

OPS = {"[MIN": 0, "[MAX": 1, "[MED": 2, "[SM": 3}
NONE = 4


def chunk_facts(tokens: list[str]) -> dict[str, int | None]:
    """The probed facts of one chunk's tokens (see the module docstring)."""
    stack: list[tuple[str, list[int]]] = []
    pops = 0
    for t in tokens:
        if t in OPS:
            stack.append((t, []))
        elif t == "]":
            if stack:
                op, args = stack.pop()
                if stack:
                    stack[-1][1].append(
                        evaluate(" ".join([op, *map(str, args), "]"])) if args else 0
                    )
            else:
                pops += 1
        elif stack:
            stack[-1][1].append(int(t))
    value = None
    if stack and stack[-1][0] != "[MED" and stack[-1][1]:
        value = evaluate(" ".join([stack[-1][0], *map(str, stack[-1][1]), "]"]))
    return {
        "pops": min(pops, 3),
        "pushes": min(len(stack), 3),
        "open_op": OPS[stack[-1][0]] if stack else NONE,
        "value": value,
    }


def capture_level0(model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Wrap the inner search so each level-0 pass appends (beam-0 roots (N, D), leaves of beam 0
    (N, L, D)), rows in the level's chunk order; returns the list it fills.

    Without autograd a large batch of chunks runs in several groups, shortest first (the outer
    recursion's ``_inner_in_groups``); the group calls are not recorded one by one but as the
    one reassembled pass, so a row is always its chunk's, whatever the batch size."""
    outer = model.encoder
    forward, in_groups = outer.inner.forward, outer._inner_in_groups
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    grouped = False

    def record(state, out, keys) -> None:
        if keys.level == 0:
            seen.append((out.nodes[:, 0, 0].detach(), state.nodes[:, 0].detach()))

    def spy(state, lengths, max_len, keys, recorder=None):
        out = forward(state, lengths, max_len, keys, recorder)
        if not grouped:
            record(state, out, keys)
        return out

    def spy_groups(state, lengths, len_t, keys):
        nonlocal grouped
        grouped = True
        try:
            out = in_groups(state, lengths, len_t, keys)
        finally:
            grouped = False
        record(state, out, keys)
        return out

    outer.inner.forward = spy
    outer._inner_in_groups = spy_groups
    return seen


def linear_probe(x: torch.Tensor, y: list[int], train_frac: float = 0.8) -> tuple[float, float]:
    """Held-out accuracy of a linear classifier of ``y`` from ``x (n, D)``, and the majority's."""
    labels = torch.tensor(y)
    cut = int(train_frac * len(labels))
    mu, sd = x[:cut].mean(0), x[:cut].std(0) + 1e-6
    z = (x - mu) / sd
    torch.manual_seed(0)
    lin = torch.nn.Linear(z.shape[1], int(labels.max()) + 1)
    opt = torch.optim.Adam(lin.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(500):
        opt.zero_grad()
        F.cross_entropy(lin(z[:cut]), labels[:cut]).backward()
        opt.step()
    with torch.no_grad():
        acc = (lin(z[cut:]).argmax(-1) == labels[cut:]).float().mean().item()
    majority = (labels[cut:] == torch.mode(labels[:cut]).values).float().mean().item()
    return acc, majority


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/probe_chunk_roots.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    p.add_argument("--chunk-width", type=int, default=8)
    p.add_argument("--data", help="a TSV file (default: 1,200 generated, 12-40 tokens)")
    args = p.parse_args(argv)
    model, _ = load_checkpoint(args.checkpoint)
    model.eval()
    if args.data:
        texts = [ex.text for ex in read_tsv(args.data)]
    else:
        texts = [ex.text for ex in generate(Recipe(12, 40), 1200, seed=101)]
    seen = capture_level0(model)
    roots, bags, facts = [], [], []
    for text in texts:
        seen.clear()
        model.predict([text], seed=0, chunk_width=args.chunk_width)
        tokens = text.split()
        r, leaves = seen[0]
        start = 0
        for c, size in enumerate(chunk_sizes(len(tokens), args.chunk_width)):
            roots.append(r[c])
            bags.append(leaves[c, :size].mean(0))
            facts.append(chunk_facts(tokens[start : start + size]))
            start += size
    x, xb = torch.stack(roots).float(), torch.stack(bags).float()
    print(f"{len(x)} level-0 chunks of {len(texts)} expressions at W {args.chunk_width}")
    print(f"{'fact':8s} {'n':>5s} {'root':>6s} {'bag':>6s} {'major':>6s}")
    for name in ("pops", "pushes", "open_op", "value"):
        rows = [i for i, f in enumerate(facts) if f[name] is not None]
        y = [facts[i][name] for i in rows]
        acc, maj = linear_probe(x[rows], y)
        accb, _ = linear_probe(xb[rows], y)
        print(f"{name:8s} {len(rows):5d} {acc:6.3f} {accb:6.3f} {maj:6.3f}")
    whole = []
    for text in texts:
        seen.clear()
        model.predict([text], seed=0, chunk_width=10_000)
        whole.append(seen[0][0][0])
    acc, maj = linear_probe(torch.stack(whole).float(), [evaluate(t) for t in texts])
    print(f"whole expressions unchunked, root -> value: {acc:.3f} (majority {maj:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
