"""Experiment (issue #16): does a dense target from the unchunked path teach chunk composition
faster than the label alone? The W 8 diagnostic, on fresh data.

    python tests/whole_distill.py STEPS OUT.jsonl TRAIN.tsv DEV.tsv [--root L] [--kl L]
        [--start CHECKPOINT] [--lr LR] [--weight-decay WD] [--train-rows N]
        [--eval-every N] [--seed S]

A model run whole (one chunk) is right on nearly every short input; the same inputs cut into
chunks of W 8 are where it fails (the diagnostic of issue #16: 99% against 56% for the base
run). Here a frozen copy of the starting model reads each training input whole (eval mode, one
chunk) and its pooled root (``EncoderOutput.pooled``, D numbers) and answer distribution become
targets for the model being trained, which reads the same input at W 8:

    loss = CE(logits_W8, label) + ROOT * |pooled_W8 - pooled_whole|^2 / mean(pooled_whole^2)
           + KL * KL(softmax(logits_whole) || softmax(logits_W8))

ROOT 0 and KL 0 is the control (the label alone, the same batches, seeds and dropout draws).
The root target asks the composed chunk roots to land where the complete-list merges put the
same expression: D numbers per input instead of one answer out of ten.
Trains STEPS steps (batch 128, Ranger lr 5e-4 as in the earlier diagnostics, weight decay 1e-2
unless ``--weight-decay`` says otherwise, clip 1, W 8 on every step; ``--train-rows N`` keeps
the first N training rows, a fixed set seen many times, to watch memorization) and logs to
OUT.jsonl every EVAL steps: held-out accuracy on DEV.tsv at W 8 (every input cut) and whole
(W 30: one chunk for inputs under 45 tokens). Training rows
that also occur in DEV.tsv are dropped. Not part of the package: the teacher is thrown away,
the model's architecture is the paper's.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_optimizer import Ranger

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rir_core.checkpoint import load_checkpoint  # noqa: E402
from rir_core.data import encode_examples, read_tsv  # noqa: E402
from rir_core.evaluate import evaluate_examples  # noqa: E402

W, WHOLE, B = 8, 30, 128  # the diagnostic's chunk width; one chunk below 45 tokens; batch


def distill_terms(student_logits, student_pooled, teacher_logits, teacher_pooled):
    """(root, kl): the relative squared distance of the pooled roots, and KL(teacher||student).

    Shapes: logits (B, Y), pooled (B, D); the teacher's are constants (no gradient).
    """
    scale = teacher_pooled.pow(2).mean().clamp_min(1e-8)
    root = (student_pooled - teacher_pooled).pow(2).mean() / scale
    kl = F.kl_div(
        F.log_softmax(student_logits, -1),
        F.log_softmax(teacher_logits, -1),
        log_target=True,
        reduction="batchmean",
    )
    return root, kl


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/whole_distill.py", description=__doc__)
    p.add_argument("steps", type=int)
    p.add_argument("out", help="JSONL log")
    p.add_argument("train", help="training TSV (inputs under 45 tokens)")
    p.add_argument("dev", help="held-out TSV, scored at W 8 and whole every EVAL steps")
    p.add_argument("--root", type=float, default=0.0, help="weight of the pooled-root target")
    p.add_argument("--kl", type=float, default=0.0, help="weight of the answer-distribution target")
    p.add_argument("--start", default=str(REPO / "pretrained" / "training_run" / "best"))
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--weight-decay", type=float, default=1e-2, help="decoupled, as Ranger's")
    p.add_argument("--train-rows", type=int, default=None, help="keep the first N rows only")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.train_rows is not None and args.train_rows < 1:
        p.error(f"--train-rows must be at least 1, not {args.train_rows}.")
    if args.weight_decay < 0:
        p.error(f"--weight-decay must not be negative, not {args.weight_decay}.")

    torch.manual_seed(args.seed)
    model, _ = load_checkpoint(args.start)
    teacher = copy.deepcopy(model).eval()
    for q in teacher.parameters():
        q.requires_grad_(False)
    dev = read_tsv(args.dev)
    held_out = {e.text for e in dev}
    rows = read_tsv(args.train)
    train = [e for e in rows if e.text not in held_out and len(e.tokens) < 45]
    dropped = len(rows) - len(train)
    if args.train_rows is not None:
        train = train[: args.train_rows]
    if not train:
        p.error(f"{args.train}: no training rows under 45 tokens that are not held out.")
    opt = Ranger(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    rng = random.Random(args.seed + 1)
    order = sorted(range(len(train)), key=lambda i: (len(train[i].tokens), rng.random()))
    batches = [order[i : i + B] for i in range(0, len(order), B)]
    rng.shuffle(batches)
    gen = torch.Generator().manual_seed(args.seed + 1)
    log = open(args.out, "w")  # noqa: SIM115 (open until the run ends)
    t0 = time.time()

    def evaluate(step: int) -> None:
        chunked = evaluate_examples(model, dev, seed=0, chunk_width=W)["accuracy"]
        whole = evaluate_examples(model, dev, seed=0, chunk_width=WHOLE)["accuracy"]
        rec = {"step": step, "dev_w8": chunked, "dev_whole": whole, "elapsed": time.time() - t0}
        print(json.dumps(rec), file=log, flush=True)

    print(json.dumps({"train_rows": len(train), "dropped": dropped}), file=log)
    evaluate(0)
    sums = {"ce": 0.0, "root": 0.0, "kl": 0.0, "acc": 0.0}
    for step in range(1, args.steps + 1):
        exs = [train[i] for i in batches[(step - 1) % len(batches)]]
        ids, mask, labels = encode_examples(exs)
        lengths = [len(e) for e in exs]
        seeds = torch.randint(0, 2**62, (len(exs),), generator=gen)
        with torch.no_grad():
            t_logits, t_out = teacher.forward_with_details(
                ids, mask, seeds, lengths=lengths, chunk_width=WHOLE
            )
        model.train()
        logits, out = model.forward_with_details(ids, mask, seeds, lengths=lengths, chunk_width=W)
        ce = F.cross_entropy(logits, labels)
        root, kl = distill_terms(logits, out.pooled, t_logits, t_out.pooled)
        loss = ce + args.root * root + args.kl * kl
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sums["ce"] += ce.item()
        sums["root"] += root.item()
        sums["kl"] += kl.item()
        sums["acc"] += (logits.argmax(-1) == labels).float().mean().item()
        if step % 20 == 0:
            rec = {"step": step, **{k: v / 20 for k, v in sums.items()}}
            print(json.dumps(rec), file=log, flush=True)
            sums = dict.fromkeys(sums, 0.0)
        if step % args.eval_every == 0:
            evaluate(step)
    log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
