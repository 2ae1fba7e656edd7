"""Experiment (issue #16): train with the three training-only behaviours of the authors' code
that ours does not share, to see whether they are what teaches chunk composition.

Session 14 read the authors' implementation (JRC1995/BeamRecursionFamily, run outside the repo
as a control; nothing copied) for what a same-weights check cannot see. Initialisation and the
ListOps hyperparameters match ours. Three behaviours differ, all in training mode only:

1. ``two_stage``: the beam search's candidates. Theirs draws Gumbel noise twice per step: per
   beam, a Gumbel top-k of the merge positions; then, over the K x k candidates, fresh Gumbel
   noise on the accumulated scores and the best K (SPEC 2, steps 2-3). Ours perturbs once and
   takes the best K of all K x (L-1) candidates, which is the same at eval (no noise) but less
   random in training.
2. ``tied_s4d_dropout``: the S4D's dropout. Theirs drops whole channels (one mask per example
   and channel, the same at every position), twice: before the GELU and after it. Ours drops
   single elements, once, after the GELU (SPEC 5).
3. ``s4d_reverse_no_grad``: their reversal of the sequence for the backward S4D direction runs
   without gradient, so the backward-direction channels' S4D parameters get none (SPEC 7.1,
   last bullet: a quirk). Their outputs are then features of fixed random filters.

At eval all three are the identity on what the model computes: a checkpoint trained with them
loads and runs as any other. :func:`patched` switches them on for a ``with`` block;
``main`` trains with them:

    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 tests/authors_training.py \\
        --config pretrained/rir_ebt_grc.authors.train.json --out runs/authors_exact --device cpu

(any ``python -m rir_core.train`` arguments; ``--parts two_stage,tied_s4d_dropout`` picks a
subset, default all three). Session 14 ran it from scratch against ``pretrained/authors_run``
(the same configuration and seed without them): docs/model_card.md, session 14.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from rir_core import inner, s4d  # noqa: E402

PARTS = ("two_stage", "tied_s4d_dropout", "s4d_reverse_no_grad")

# The one place the two-stage selection changes the beam search: after the candidates' validity,
# restrict them to each beam's Gumbel top-k positions and redraw the noise for the best K.
_ANCHOR = "cand_ok = pair_ok[:, None, :] & valid[:, :, None]  # (N, K, Lt-1)\n"
_TWO_STAGE = """if self.training:  # the authors' two stages: per-beam top-k, then fresh noise
    k1 = min(beams, n_pairs)
    first = torch.where(pair_ok[:, None, :], keys_pos, NEG)  # (N, K, Lt-1) stage-1 keys
    top = top_k_stable(first.flatten(0, 1), k1).view(n_seq, beams, k1)  # (N, K, k)
    cand_ok = cand_ok & torch.zeros_like(cand_ok).scatter_(2, top, True)
    second = rng.extend(h, 918273)  # a stream of its own: one more coordinate on the first
    keys_pos = logp + rng.gumbel_from_hash(second, dtype=logp.dtype)
"""


def _two_stage_forward():
    """``BeamSearch.forward`` with the two-stage selection, compiled from its own source."""
    src = textwrap.dedent(inspect.getsource(inner.BeamSearch.forward))
    lines = [line for line in src.splitlines(keepends=True) if line.strip() == _ANCHOR.strip()]
    if len(lines) != 1:
        raise RuntimeError("rir_core/inner.py changed: the two-stage patch's anchor is not unique")
    indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    src = src.replace(lines[0], lines[0] + textwrap.indent(_TWO_STAGE, indent))
    namespace = dict(vars(inner))
    exec(compile(src, "<authors_training two_stage>", "exec"), namespace)  # noqa: S102
    return namespace["forward"]


def tied_dropout(y: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Channel dropout of ``y (B, L, C)``: one mask per example and channel, every position."""
    if not training or p == 0:
        return y
    keep = torch.empty(y.shape[0], 1, y.shape[2], device=y.device, dtype=y.dtype)
    return y * keep.bernoulli_(1 - p) / (1 - p)


def _s4d_forward(tied: bool, no_grad: bool):
    """``BiS4D._forward`` with the authors' dropout and/or their gradient-free reversal."""

    def _forward(self, x, mask, recurrent, k_f=None):  # noqa: ANN001, ANN202
        lengths = mask.sum(1)  # (B,)
        x0 = x * mask[..., None]
        back = s4d.reverse_padded(x0, lengths)  # (B, L, D)
        if no_grad:
            back = back.detach()
        u = torch.cat([x0, back], dim=-1).transpose(1, 2)  # (B, 2D, L)
        y = self.kernel.forward_recurrent(u) if recurrent else self.kernel(u, k_f)
        y = y.transpose(1, 2)  # (B, L, 2D)
        d = x.shape[-1]
        y_back = s4d.reverse_padded(y[..., d:], lengths)
        if no_grad:
            y_back = y_back.detach()
        y = torch.cat([y[..., :d], y_back], dim=-1)
        if tied:
            p = self.dropout.p
            y = tied_dropout(F.gelu(tied_dropout(y, p, self.training)), p, self.training)
        else:
            y = self.dropout(F.gelu(y))
        return x + F.glu(self.out(y), dim=-1)

    return _forward


@contextlib.contextmanager
def patched(parts: Sequence[str] = PARTS) -> Iterator[None]:
    """Within this block every model trains with the chosen behaviours (see the module doc)."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part {sorted(unknown)[0]!r}; choose from {', '.join(PARTS)}")
    saved = (inner.BeamSearch.forward, s4d.BiS4D._forward)
    try:
        if "two_stage" in parts:
            inner.BeamSearch.forward = _two_stage_forward()
        if "tied_s4d_dropout" in parts or "s4d_reverse_no_grad" in parts:
            s4d.BiS4D._forward = _s4d_forward(
                "tied_s4d_dropout" in parts, "s4d_reverse_no_grad" in parts
            )
        yield
    finally:
        inner.BeamSearch.forward, s4d.BiS4D._forward = saved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="tests/authors_training.py",
        description="Train (python -m rir_core.train's arguments, below) with the authors' "
        "training-only behaviours switched on.",
        add_help=False,
    )
    p.add_argument("--parts", default=",".join(PARTS), help=f"a subset of {', '.join(PARTS)}")
    known, rest = p.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        p.print_help()
        print()
    from rir_core.train import main as train_main

    with patched([part for part in known.parts.split(",") if part]):
        return train_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
