"""Where is a two-chunk answer lost: in the chunk roots, or in their composition?

At chunk width W, an input of 1.5 W to 2 W tokens is cut once, after token W. The model reduces
each chunk to a root (level 0) and then composes the two roots with its GRC cell (level 1)
before the head reads the answer. When it gets such an input wrong, the information was lost in
one of two places:

- **in the roots**: the inner recursion, run on a chunk that is a partial expression, did not
  put what the next level needs into the root; or
- **in the composition**: the roots hold it, and the level-1 cell and the head do not get it out.

This tool separates the two. It collects the beam-0 level-0 roots ``r1, r2 (D,)`` of fresh
two-chunk inputs (eval mode, seed 0) and, on 80% of them, trains the level-1 step alone on the
frozen roots: an untied copy of the model's own cell and head (``head(cell(r1, r2))``, no
dropout), fine-tuned from the trained weights, and the same cell and head from a fresh
initialisation. The model's weights are not changed. All are scored on the other 20% (the epoch
chosen on a validation tenth of the 80%). A fine-tuned copy far above the model says the roots
hold more than the shared cell gets out of them; a copy that stays at the model's level says the
roots are the limit. Beside them: an MLP probe (two hidden layers of 512) on ``[r1; r2]`` and on
the two chunks' mean leaf vectors (a bag of tokens in context, no recursion), and the model on
the same inputs whole.

    python tests/probe_pair_roots.py --checkpoint pretrained/rir_ebt_grc --chunk-width 30

The inputs are ``--n`` generated expressions of 1.5 W to 2 W tokens (seed 4242; default
40,000). About ten minutes of CPU at W 30, most of it the forward passes.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probe_chunk_roots import capture_level0  # noqa: E402

from rir_core.checkpoint import load_checkpoint  # noqa: E402
from rir_core.generate import Recipe, generate  # noqa: E402
from rir_core.listops import evaluate  # noqa: E402
from rir_core.outer import chunk_sizes  # noqa: E402


@torch.inference_mode()
def collect(model, texts: list[str], width: int, batch_size: int = 64):
    """Per input: level-0 roots ``(2, D)``, chunk leaf means ``(2, D)``, the model's answer at W
    and whole. Every input must be cut exactly once at ``width``."""
    seen = capture_level0(model)
    roots, bags, chunked, whole = [], [], [], []
    for s in range(0, len(texts), batch_size):
        toks = [t.split() for t in texts[s : s + batch_size]]
        for t in toks:
            if len(chunk_sizes(len(t), width)) != 2:
                raise ValueError(f"an input of {len(t)} tokens is not cut once at W {width}")
        ids, mask, lengths = model.encode_tokens(toks)
        seen.clear()
        chunked += model(ids, mask, 0, lengths=lengths, chunk_width=width).argmax(-1).tolist()
        r, leaves = seen[0]  # (2B, D) and (2B, W, D): example-major chunks
        roots.append(r.reshape(len(toks), 2, -1))
        m = torch.zeros(len(toks), 2, r.shape[-1])
        for i, n in enumerate(lengths):
            m[i, 0] = leaves[2 * i, :width].mean(0)
            m[i, 1] = leaves[2 * i + 1, : n - width].mean(0)
        bags.append(m)
        whole += model(ids, mask, 0, lengths=lengths, chunk_width=10_000).argmax(-1).tolist()
    return torch.cat(roots).float(), torch.cat(bags).float(), chunked, whole


def mlp_probe(x: torch.Tensor, y: torch.Tensor, train_frac: float = 0.8, epochs: int = 60) -> float:
    """Held-out accuracy of an MLP ``x (n, F) -> y`` trained on the first ``train_frac`` (its
    last tenth kept for choosing the epoch)."""
    cut = int(train_frac * len(y))
    fit = int(0.9 * cut)
    mu, sd = x[:fit].mean(0), x[:fit].std(0) + 1e-6
    z = (x - mu) / sd
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(z.shape[1], 512),
        torch.nn.GELU(),
        torch.nn.Linear(512, 512),
        torch.nn.GELU(),
        torch.nn.Linear(512, 10),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    best, best_state = -1.0, None
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(fit, generator=g).split(256):
            opt.zero_grad()
            F.cross_entropy(net(z[idx]), y[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = (net(z[fit:cut]).argmax(-1) == y[fit:cut]).float().mean().item()
        if val > best:
            best, best_state = val, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    with torch.no_grad():
        return (net(z[cut:]).argmax(-1) == y[cut:]).float().mean().item()


def fit_level1(cell, head, roots, y, fresh: bool, train_frac: float = 0.8, epochs: int = 40):
    """Held-out accuracy of ``head(cell(r1, r2))`` trained on the frozen ``roots (n, 2, D)``: an
    untied copy of ``cell`` and ``head``, fine-tuned (lr 3e-4) or freshly initialised (lr 1e-3),
    eval mode (no dropout), AdamW, batch 128; the epoch with the best accuracy on the last tenth
    of the training part. ``cell`` and ``head`` themselves are left as they are."""
    n = len(y)
    cut = int(train_frac * n)
    fit = int(0.9 * cut)
    c, h = copy.deepcopy(cell).eval(), copy.deepcopy(head).eval()
    torch.manual_seed(0)
    if fresh:
        for m in [*c.modules(), *h.modules()]:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    params = [*c.parameters(), *h.parameters()]
    for q in params:
        q.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-3 if fresh else 3e-4, weight_decay=1e-2)

    def accuracy(lo: int, hi: int) -> float:
        with torch.no_grad():
            out = h(c(roots[lo:hi, 0], roots[lo:hi, 1]))
            return (out.argmax(-1) == y[lo:hi]).float().mean().item()

    g = torch.Generator().manual_seed(0)
    best, state = accuracy(fit, cut), copy.deepcopy((c.state_dict(), h.state_dict()))
    for _ in range(epochs):
        for idx in torch.randperm(fit, generator=g).split(128):
            opt.zero_grad()
            F.cross_entropy(h(c(roots[idx, 0], roots[idx, 1])), y[idx]).backward()
            opt.step()
        val = accuracy(fit, cut)
        if val > best:
            best, state = val, copy.deepcopy((c.state_dict(), h.state_dict()))
    c.load_state_dict(state[0])
    h.load_state_dict(state[1])
    return accuracy(cut, n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/probe_pair_roots.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    p.add_argument("--chunk-width", type=int, default=30)
    p.add_argument("--n", type=int, default=40_000)
    p.add_argument("--epochs", type=int, default=60)
    args = p.parse_args(argv)
    w = args.chunk_width
    model, _ = load_checkpoint(args.checkpoint)
    model.eval()
    lo, hi = (3 * w + 1) // 2, 2 * w
    texts = [ex.text for ex in generate(Recipe(lo, hi), args.n, seed=4242)]
    y = torch.tensor([evaluate(t) for t in texts])
    roots, bags, chunked, whole = collect(model, texts, w)
    roots, bags = roots.clone(), bags.clone()  # ordinary tensors: the fits below need autograd
    cut = int(0.8 * len(y))
    held = y[cut:]
    model_acc = (torch.tensor(chunked[cut:]) == held).float().mean().item()
    whole_acc = (torch.tensor(whole[cut:]) == held).float().mean().item()
    cell, head = model.encoder.inner.cell, model.head
    with torch.no_grad():
        own = (head(cell(roots[cut:, 0], roots[cut:, 1])).argmax(-1) == held).float().mean().item()
    tuned = fit_level1(cell, head, roots, y, fresh=False)
    fresh = fit_level1(cell, head, roots, y, fresh=True)
    probe = mlp_probe(roots.flatten(1), y, epochs=args.epochs)
    bag = mlp_probe(bags.flatten(1), y, epochs=args.epochs)
    print(f"{len(texts)} inputs of {lo}-{hi} tokens, cut once at W {w}; last {len(held)} scored")
    rows = [
        (f"the model at W {w} (K beams, as it runs)", model_acc),
        ("its level-1 step on the beam-0 roots", own),
        ("  the same, cell and head fine-tuned on the roots", tuned),
        ("  a fresh cell and head trained on the roots", fresh),
        ("MLP probe on [root 1; root 2]", probe),
        ("MLP probe on the chunks' mean leaf vectors", bag),
        ("the model on the same inputs whole", whole_acc),
    ]
    for label, value in rows:
        print(f"{label:52s} {100 * value:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
