"""Experiment (issue #16): does an auxiliary loss on level-0 chunk roots (their partial values)
speed up chunk composition? The W 8 diagnostic, from the shipped weights, on fresh data.

    python tests/aux_chunk_loss.py LAMBDA STEPS OUT.jsonl TRAIN.tsv DEV.tsv [--targets lsum]

trains STEPS steps (batch 128, Ranger lr 5e-4, gradient clip 1, W 8) on TRAIN.tsv and logs the
accuracy on DEV.tsv at W 8 every 100 steps to OUT.jsonl. LAMBDA 0 is the control: the same
loop without the auxiliary loss (its heads get no gradient). Not part of the package: the heads
are thrown away, the model's architecture is the paper's.
Aux targets per level-0 chunk (beam-0 root), linear heads, cross-entropy, ignored when absent:
  top: value so far of the innermost list still open at the chunk's end (its operator applied
       to its complete arguments so far);
  lmin/lmax/lsum: min, max, sum mod 10 of the loose arguments before the chunk's first unmatched
       ']' (arguments of a list opened in an earlier chunk).
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_optimizer import Ranger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rir_core.checkpoint import load_checkpoint
from rir_core.data import encode_examples, read_tsv
from rir_core.evaluate import evaluate_examples
from rir_core.outer import chunk_sizes

W, B = 8, 128  # the diagnostic's chunk width; batch size
OPS = {"[MIN": 0, "[MAX": 1, "[MED": 2, "[SM": 3}


def value(op, a):
    if op == 0:
        return min(a)
    if op == 1:
        return max(a)
    if op == 3:
        return sum(a) % 10
    xs = sorted(a)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) // 2


def chunk_labels(chunk):
    stack, args, loose, popped = [], [], [], False
    for t in chunk:
        if t in OPS:
            stack.append(OPS[t])
            args.append([])
        elif t == "]":
            if stack:
                op, a = stack.pop(), args.pop()
                v = value(op, a) if a else 0
                if args:
                    args[-1].append(v)
                elif not popped:
                    loose.append(v)
            else:
                popped = True
        else:
            if args:
                args[-1].append(int(t))
            elif not popped:
                loose.append(int(t))
    top = value(stack[-1], args[-1]) if stack and args[-1] else -100
    if loose:
        return [top, min(loose), max(loose), sum(loose) % 10]
    return [top, -100, -100, -100]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/aux_chunk_loss.py", description=__doc__)
    p.add_argument("lam", type=float, help="weight of the auxiliary loss (0: the control)")
    p.add_argument("steps", type=int)
    p.add_argument("out", help="JSONL log")
    p.add_argument("train", help="training TSV")
    p.add_argument("dev", help="held-out TSV, scored at W 8 every 100 steps")
    p.add_argument(
        "--targets",
        default="top,lmin,lmax,lsum",
        help="comma list of the auxiliary targets to train (default all four)",
    )
    args = p.parse_args(argv)
    targets = set(args.targets.split(","))
    unknown = targets - {"top", "lmin", "lmax", "lsum"}
    if unknown:
        p.error(f"unknown target(s) {', '.join(sorted(unknown))}: use top, lmin, lmax, lsum.")
    torch.manual_seed(0)
    model, _ = load_checkpoint(Path(__file__).resolve().parents[1] / "pretrained" / "rir_ebt_grc")
    D = model.config.hidden_size
    heads = torch.nn.ModuleDict(
        {k: torch.nn.Linear(D, 10) for k in ("top", "lmin", "lmax", "lsum")}
    )

    inner = model.encoder.inner
    orig = inner.forward
    captured = []

    def spy(state, lengths, max_len, keys, recorder=None):  # noqa: ANN001
        out = orig(state, lengths, max_len, keys, recorder)
        if keys.level == 0:
            captured.append(out.nodes[:, 0, 0])  # (N, D) beam 0's root of every level-0 chunk
        return out

    inner.forward = spy
    train = read_tsv(args.train)
    dev = read_tsv(args.dev)
    params = list(model.parameters()) + list(heads.parameters())
    opt = Ranger(params, lr=5e-4, weight_decay=1e-2)
    rng = random.Random(1)
    order = sorted(range(len(train)), key=lambda i: (len(train[i].tokens), rng.random()))
    batches = [order[i : i + B] for i in range(0, len(order), B)]
    rng.shuffle(batches)
    log = open(args.out, "w")  # noqa: SIM115 (open until the run ends)
    gen = torch.Generator().manual_seed(1)
    t0 = time.time()

    def evaluate(step):
        captured.clear()
        acc = evaluate_examples(model, dev, seed=0, chunk_width=W)["accuracy"]
        captured.clear()
        rec = {"step": step, "dev_w8": acc, "elapsed": time.time() - t0}
        print(json.dumps(rec), file=log, flush=True)

    evaluate(0)
    for step in range(1, args.steps + 1):
        exs = [train[i] for i in batches[step - 1]]
        ids, mask, labels = encode_examples(exs)
        model.train()
        heads.train()
        captured.clear()
        seeds = torch.randint(0, 2**62, (len(exs),), generator=gen)
        logits = model(ids, mask, seeds, lengths=[len(e) for e in exs], chunk_width=W)
        loss = F.cross_entropy(logits, labels)
        # Level-0 chunk rows come example by example, chunk by chunk (outer.plan_level).
        ys = []
        for e in exs:
            start = 0
            for size in chunk_sizes(len(e.tokens), W):
                ys.append(chunk_labels(e.tokens[start : start + size]))
                start += size
        roots = captured[0]
        y = torch.tensor(ys)  # (N, 4)
        assert y.shape[0] == roots.shape[0]
        aux = sum(
            F.cross_entropy(heads[k](roots), y[:, j], ignore_index=-100)
            for j, k in enumerate(("top", "lmin", "lmax", "lsum"))
            if k in targets and (y[:, j] >= 0).any()
        )
        total = loss + args.lam * aux
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 20 == 0:
            print(
                json.dumps({"step": step, "loss": loss.item(), "aux": float(aux)}),
                file=log,
                flush=True,
            )
        if step % 100 == 0:
            evaluate(step)
    log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
