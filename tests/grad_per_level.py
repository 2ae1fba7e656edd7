"""How much gradient reaches each outer level? (issue #16: is chunk composition starved?)

Runs one training-mode forward and backward of a checkpoint on 128 fresh expressions and prints
the mean gradient norm of the loss with respect to each level's root vectors (per beam, and for
beam 0) and to each level's beam scores, beside the gradient per leaf:

    python tests/grad_per_level.py --checkpoint pretrained/rir_ebt_grc

Four cases: 12-40 tokens unchunked and at W 8, 45-100 tokens at W 30 and unchunked. Seconds of
CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rir_core.checkpoint import load_checkpoint  # noqa: E402
from rir_core.generate import Recipe, generate  # noqa: E402
from rir_core.listops import evaluate  # noqa: E402
from rir_core.model import loss_fn  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/grad_per_level.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model, _ = load_checkpoint(args.checkpoint)
    model.train()
    inner = model.encoder.inner
    forward = inner.forward
    seen: list[tuple[int, object]] = []

    def spy(state, lengths, max_len, keys, recorder=None):  # noqa: ANN001
        out = forward(state, lengths, max_len, keys, recorder)
        out.nodes.retain_grad()
        out.scores.retain_grad()
        seen.append((int(keys.level), out))
        return out

    inner.forward = spy
    k = model.config.beam_size
    for lo, hi, width, seed in ((12, 40, 1000, 555), (12, 40, 8, 555), (45, 100, 30, 556),
                                (45, 100, 1000, 556)):  # fmt: skip
        texts = [ex.text for ex in generate(Recipe(lo, hi), 128, seed=seed)]
        seen.clear()
        ids, mask, lengths = model.encode_tokens([t.split() for t in texts])
        labels = torch.tensor([evaluate(t) for t in texts])
        leaves = model.embed(ids, mask)  # (B, L, D)
        leaves.retain_grad()
        roots, scores, valid, _ = model.encoder(
            leaves, lengths, torch.arange(len(texts)), beams=k, width=width, alignment="sample"
        )
        weights = scores.masked_fill(~valid, float("-inf")).softmax(-1)  # (B, K)
        logits = model.head((weights[..., None] * roots).sum(1))
        loss = loss_fn(logits, labels)
        model.zero_grad()
        loss.backward()
        acc = (logits.argmax(-1) == labels).float().mean().item()
        per_leaf = leaves.grad.norm(dim=-1)[mask].mean().item()
        print(f"{lo}-{hi} tokens, W {width}: loss {loss.item():.3f}, accuracy {acc:.3f}, "
              f"gradient per leaf {per_leaf:.2e}")  # fmt: skip
        for level, out in seen:
            g = out.nodes.grad.norm(dim=-1).squeeze(-1)  # (N, K)
            s = out.scores.grad.abs().mean().item()
            print(f"  level {level}: {g.shape[0]:4d} chunks, root gradient per beam "
                  f"{g.mean().item():.2e} (beam 0 {g[:, 0].mean().item():.2e}), "
                  f"|d loss / d score| {s:.2e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
