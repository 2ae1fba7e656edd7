"""BBT-GRC: a balanced binary tree of GRC cells, no beams, depth ceil(log2 n) (SPEC section 2).

Neighbours are paired level by level, ``(0, 1), (2, 3), ...``; an odd node at the end of a level
is carried up unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rir_core.cells import GRC


def balanced_depth(n: int) -> int:
    """Levels of a balanced binary tree over ``n`` leaves: ``ceil(log2 n)``."""
    return math.ceil(math.log2(n)) if n > 1 else 0


def balanced_tree(n: int):
    """The tree BBT-GRC builds over ``n`` tokens, as nested ``[left, right]`` lists of indices."""
    level: list = list(range(n))
    while len(level) > 1:
        nxt = [[level[i], level[i + 1]] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class BalancedTree(nn.Module):
    """Args: ``leaves (B, L, D)``, ``lengths (B,)``, host ``max_len``. Returns ``(B, D)``."""

    def __init__(self, cell: GRC) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, leaves: torch.Tensor, lengths: torch.Tensor, max_len: int) -> torch.Tensor:
        x = leaves[:, :max_len]  # (B, L, D)
        cur = lengths.clone()  # (B,)
        while x.shape[1] > 1:
            if x.shape[1] % 2:  # pad to even width
                x = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
            left, right = x[:, 0::2], x[:, 1::2]  # (B, L/2, D) each
            parents = self.cell(left, right)
            pair_ids = torch.arange(left.shape[1], device=x.device)[None, :]
            complete = (2 * pair_ids + 1) < cur[:, None]  # (B, L/2): both children real
            x = torch.where(complete[..., None], parents, left)
            cur = torch.div(cur + 1, 2, rounding_mode="floor")
        return x[:, 0]
