"""Experiment (issue #16): does teaching the pre-chunk S4D to carry the open operators across a
cut speed up chunk composition? The W 8 diagnostic, on lesson files, two arms compared.

    python tests/aux_s4d_context.py LAMBDA STEPS OUT.jsonl TRAIN.tsv DEV.tsv [DEV.tsv ...]

Session 8 found that the shipped model does not use the S4D layer's context across a cut
(``tests/cut_report.py --s4d-per-chunk``): a chunk is reduced as if it were alone, so the root of
a chunk that closes lists opened earlier cannot know which operators it closes, and the level
above has to apply the whole nested closing in one cell application. Here a linear head on the
S4D output of every token of a later chunk is trained to name the operators that were opened
before that chunk and are still open at the token (innermost first, up to ``DEPTH``; four
classes each, cross-entropy; tokens of the first chunk, or with fewer open lists, are ignored).
LAMBDA 0 is the control: the same loop, the heads trained on the S4D output detached (a probe
of what it carries), so the model gets nothing from them. Everything else is the
trainer's recipe for a lesson stage: Ranger lr 5e-4, weight decay 1e-2, clip 1, batch 128,
W 8, batches of nearly one length in a shuffled order, the model from ``--init`` (default the
shipped one). ``--widths 8,30,100`` draws each step's W from a list instead (the targets follow
it). Every ``--eval-every`` steps each DEV file is scored (at W 8, or at the W of ``FILE@W``)
and logged with the heads' accuracy on it (how much of the context the S4D output carries).
The heads are thrown away: the model's architecture is the paper's. ``--save DIR`` writes the
model at the end.
"""

from __future__ import annotations

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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aux_chunk_loss import OPS, B, W  # noqa: E402  (the diagnostic's W 8, batch 128)

from rir_core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from rir_core.data import bucket_batches, encode_examples, read_tsv  # noqa: E402
from rir_core.evaluate import evaluate_examples  # noqa: E402
from rir_core.outer import chunk_sizes  # noqa: E402

DEPTH = 3  # open operators named per token, innermost first
IGNORE = -100


def context_targets(tokens: tuple[str, ...] | list[str], width: int) -> list[list[int]]:
    """``(L, DEPTH)`` targets: for every token of a chunk after the first, the operators opened
    before that chunk and still open at the token (after it, for a ``]``), innermost first;
    IGNORE where there is no such operator, and for every token of the first chunk."""
    out: list[list[int]] = []
    stack: list[int] = []  # operators open so far, outermost first
    start = 0
    for size in chunk_sizes(len(tokens), width):
        inherited = len(stack)  # lists opened before this chunk
        for t in tokens[start : start + size]:
            if t in OPS:
                stack.append(OPS[t])
            elif t == "]":
                stack.pop()
                inherited = min(inherited, len(stack))
            row = [IGNORE] * DEPTH
            if start > 0:
                carried = stack[:inherited][::-1]  # innermost first
                for j, op in enumerate(carried[:DEPTH]):
                    row[j] = op
            out.append(row)
        start += size
    return out


def batch_targets(examples, width: int, length: int) -> torch.Tensor:
    """``(B, L, DEPTH)`` targets of a batch padded to ``length`` tokens."""
    y = torch.full((len(examples), length, DEPTH), IGNORE, dtype=torch.long)
    for i, ex in enumerate(examples):
        rows = context_targets(ex.tokens, width)
        y[i, : len(rows)] = torch.tensor(rows, dtype=torch.long)
    return y


def head_accuracy(heads, feats: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """(right, counted) over every named operator of every head."""
    right = counted = 0
    for j, head in enumerate(heads):
        keep = y[..., j] != IGNORE
        if keep.any():
            pred = head(feats[keep]).argmax(-1)
            right += int((pred == y[..., j][keep]).sum())
            counted += int(keep.sum())
    return right, counted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/aux_s4d_context.py", description=__doc__)
    p.add_argument("lam", type=float, help="weight of the auxiliary loss (0: the control)")
    p.add_argument("steps", type=int)
    p.add_argument("out", help="JSONL log")
    p.add_argument("train", help="training TSV")
    p.add_argument("dev", nargs="+", help="held-out TSVs, scored at W 8 (FILE@W: at chunk width W)")
    p.add_argument(
        "--init", default=str(Path(__file__).resolve().parents[1] / "pretrained" / "rir_ebt_grc")
    )
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--save", help="write the trained model to this checkpoint directory")
    p.add_argument(
        "--widths",
        default=str(W),
        help="chunk widths W,W,...: every step draws its own (default 8; the targets follow it)",
    )
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    model, info = load_checkpoint(args.init)
    if model.s4d is None:
        p.error(f"{args.init} has no S4D layer: nothing to teach.")
    D = model.config.hidden_size
    heads = torch.nn.ModuleList(torch.nn.Linear(D, len(OPS)) for _ in range(DEPTH))
    captured: list[torch.Tensor] = []
    model.s4d.register_forward_hook(lambda _m, _i, out: captured.append(out))
    train = read_tsv(args.train)
    widths = [int(w) for w in args.widths.split(",")]
    devs = {}
    for spec in args.dev:
        path, _, width = spec.partition("@")
        devs[Path(path).stem + (f"@{width}" if width else "")] = (
            read_tsv(path),
            int(width) if width else W,
        )
    params = list(model.parameters()) + list(heads.parameters())
    opt = Ranger(params, lr=args.lr, weight_decay=1e-2)
    rng = random.Random(args.seed)
    batches = bucket_batches([len(ex.tokens) for ex in train], B, rng)  # the trainer's "sorted"
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()

    def evaluate(step: int) -> None:
        rec: dict = {"step": step, "elapsed": round(time.time() - t0, 1)}
        for name, (exs, width) in devs.items():
            captured.clear()
            rec[name] = evaluate_examples(model, exs, seed=0, chunk_width=width)["accuracy"]
            right = counted = 0
            with torch.inference_mode():
                for s in range(0, len(exs), B):
                    part = exs[s : s + B]
                    ids, mask, _ = encode_examples(part)
                    captured.clear()
                    model.embed(ids, mask)
                    r, c = head_accuracy(
                        heads, captured[-1], batch_targets(part, width, ids.shape[1])
                    )
                    right, counted = right + r, counted + c
            rec[name + "_ctx"] = right / counted if counted else None
        captured.clear()
        print(json.dumps(rec), file=log, flush=True)

    with open(args.out, "w") as log:
        evaluate(0)
        for step in range(1, args.steps + 1):
            exs = [train[i] for i in batches[(step - 1) % len(batches)]]
            width = random.Random(f"{args.seed}:{step}").choice(widths)
            ids, mask, labels = encode_examples(exs)  # (B, L), (B, L), (B,)
            model.train()
            heads.train()
            captured.clear()
            seeds = torch.randint(0, 2**62, (len(exs),), generator=gen)
            logits = model(ids, mask, seeds, lengths=[len(e) for e in exs], chunk_width=width)
            loss = F.cross_entropy(logits, labels)
            feats = captured[0]  # (B, L, D): the S4D output
            if not args.lam:  # the control: the heads learn to read the S4D output, the model
                feats = feats.detach()  # gets nothing from them
            y = batch_targets(exs, width, ids.shape[1])  # (B, L, DEPTH)
            terms = [
                F.cross_entropy(head(feats).flatten(0, 1), y[..., j].flatten(), ignore_index=IGNORE)
                for j, head in enumerate(heads)
                if (y[..., j] != IGNORE).any()
            ]
            aux = sum(terms) / len(terms) if terms else feats.new_zeros(())
            total = loss + (args.lam or 1.0) * aux
            opt.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if step % 20 == 0:
                print(
                    json.dumps({"step": step, "loss": loss.item(), "aux": float(aux.detach())}),
                    file=log,
                    flush=True,
                )
            if step % args.eval_every == 0 or step == args.steps:
                evaluate(step)
    if args.save:
        meta = dict(info.metadata)
        meta["notes"] = f"aux_s4d_context lambda {args.lam}, {args.steps} steps on {args.train}"
        save_checkpoint(args.save, model, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
