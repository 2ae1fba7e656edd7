"""Beam alignment between outer levels (SPEC section 4).

After the inner recursion every chunk ``c`` of an example has K beams with scores ``s_c``. The
next level needs K sequences ("slots") of C nodes, one beam per chunk each. A strategy returns, for
every slot and chunk, which beam fills it. One small function per strategy, dispatched on the
:class:`~rir_core.config.Alignment` enum.

Shapes: ``scores``/``valid`` ``(B, C, K)`` (chunk beams; padded chunks have ``chunk_mask`` False),
``picks`` ``(B, K, C)`` and ``slot_valid`` ``(B, K)``.
"""

from __future__ import annotations

import torch

from rir_core import rng
from rir_core.config import Alignment


def _masked_probs(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """softmax over each chunk's valid beams ``(B, C, K)``; padded chunks get beam 0."""
    z = scores.masked_fill(~valid, float("-inf"))
    z = torch.where(valid.any(-1, keepdim=True), z, torch.zeros_like(z))
    p = z.softmax(-1)
    return p


def _draw(
    probs: torch.Tensor, valid: torch.Tensor, seeds: torch.Tensor, level: int, slots: int
) -> torch.Tensor:
    """Inverse-CDF draws with replacement, slot 0 fixed to beam 0. Returns ``(B, K, C)``."""
    b, c, k = probs.shape
    device = probs.device
    slot_ids = torch.arange(1, slots, device=device)[None, :, None]  # (1, K-1, 1)
    chunk_ids = torch.arange(c, device=device)[None, None, :]  # (1, 1, C)
    u = rng.uniform(
        seeds[:, None, None], rng.ALIGN, level, chunk_ids, slot_ids, dtype=probs.dtype
    )  # (B, K-1, C)
    cdf = probs.cumsum(-1)  # (B, C, K)
    idx = (cdf[:, None, :, :] < u[..., None]).sum(-1)  # (B, K-1, C)
    last_valid = valid.long().cumsum(-1).argmax(-1)  # (B, C): index of the last valid beam
    idx = torch.minimum(idx, last_valid[:, None, :])  # guards against rounding at cdf's end
    first = torch.zeros(b, 1, c, dtype=torch.long, device=device)
    return torch.cat([first, idx], dim=1)


def align_sample(scores, valid, chunk_mask, seeds, level, slots):
    """The paper's: slot 0 = every chunk's best beam; other slots drawn from softmax(s_c)."""
    picks = _draw(_masked_probs(scores, valid), valid, seeds, level, slots)
    return picks, torch.ones(scores.shape[0], slots, dtype=torch.bool, device=scores.device)


def align_random(scores, valid, chunk_mask, seeds, level, slots):
    """Ablation: like ``sample`` but uniform over each chunk's valid beams."""
    probs = valid.to(scores.dtype)
    probs = probs / probs.sum(-1, keepdim=True).clamp(min=1)
    picks = _draw(probs, valid, seeds, level, slots)
    return picks, torch.ones(scores.shape[0], slots, dtype=torch.bool, device=scores.device)


def align_rank(scores, valid, chunk_mask, seeds, level, slots):
    """Ablation: slot b = beam b of every chunk (the chunk's best beam where it has no beam b)."""
    b, c, k = scores.shape
    slot_ids = torch.arange(slots, device=scores.device)[None, :, None].expand(b, slots, c)
    has = valid.transpose(1, 2)[:, :slots]  # (B, K, C): chunk c has a beam b
    picks = torch.where(has, slot_ids, torch.zeros_like(slot_ids))
    return picks, torch.ones(b, slots, dtype=torch.bool, device=scores.device)


def align_kbest(scores, valid, chunk_mask, seeds, level, slots):
    """Ours: exactly the K highest-scoring combinations (one beam per chunk), deterministic.

    The K best of a sum of C sorted lists are found by folding the chunks in order: the K best
    combinations of chunks 1..c+1 are among the K best of chunks 1..c each extended by one beam of
    chunk c+1, so each fold keeps K of K x K candidates (a batched equivalent of the heap-based
    k-best merge; the reference implementation uses the heap). Ties go to the lower index.
    """
    b, c, k = scores.shape
    device = scores.device
    ok = valid | ~chunk_mask[..., None] & (torch.arange(k, device=device) == 0)  # pads: beam 0
    sc = torch.where(chunk_mask[..., None], scores, torch.zeros_like(scores))
    # Start: the K best beams of chunk 0 (the lists arrive sorted, but do not rely on it).
    key0 = sc[:, 0].masked_fill(~ok[:, 0], float("-inf"))
    order = torch.sort(key0, dim=-1, descending=True, stable=True).indices[:, :slots]  # (B, S)
    picks = order[..., None]  # (B, S, 1)
    total = sc[:, 0].gather(1, order)  # (B, S)
    alive = ok[:, 0].gather(1, order)  # (B, S)
    for ci in range(1, c):
        cand = total[:, :, None] + sc[:, ci][:, None, :]  # (B, S, K)
        cand_ok = alive[:, :, None] & ok[:, ci][:, None, :]
        key = cand.masked_fill(~cand_ok, float("-inf")).flatten(1)  # (B, S*K)
        best = torch.sort(key, dim=-1, descending=True, stable=True).indices[:, :slots]
        prev = torch.div(best, k, rounding_mode="floor")  # (B, S)
        beam = best % k
        picks = torch.cat(
            [picks.gather(1, prev[..., None].expand(-1, -1, ci)), beam[..., None]], dim=2
        )
        total = cand.flatten(1).gather(1, best)
        alive = cand_ok.flatten(1).gather(1, best)
    if picks.shape[1] < slots:  # fewer combinations than slots: pad with invalid slots
        pad = slots - picks.shape[1]
        picks = torch.cat([picks, picks[:, :1].expand(-1, pad, -1)], dim=1)
        alive = torch.cat([alive, torch.zeros(b, pad, dtype=torch.bool, device=device)], dim=1)
    return picks, alive


STRATEGIES = {
    Alignment.SAMPLE: align_sample,
    Alignment.RANK: align_rank,
    Alignment.RANDOM: align_random,
    Alignment.KBEST: align_kbest,
}


def align(
    strategy: Alignment,
    scores: torch.Tensor,
    valid: torch.Tensor,
    chunk_mask: torch.Tensor,
    seeds: torch.Tensor,
    level: int,
    slots: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch to one strategy. Returns ``picks (B, K, C)`` and ``slot_valid (B, K)``."""
    return STRATEGIES[Alignment(strategy)](scores, valid, chunk_mask, seeds, level, slots)
