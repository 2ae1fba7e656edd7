"""The composition cell and the merge scorers shared by every model (SPEC section 2).

Glossary (code -> paper): ``GRC`` = Gated Recursive Cell (Shen et al. 2019, as used by Ray
Chowdhury & Caragea), ``ChildScorer`` = EBT's scorer on child slices, ``ParentScorer`` = BT-GRC's
score of a composed parent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with a mask from ``rand`` (much faster on CPU than ``bernoulli_``).

    Same distribution as :func:`torch.nn.functional.dropout`; draws from torch's global RNG.
    """
    if not training or p == 0.0:
        return x
    keep = torch.rand_like(x) >= p
    return x * keep / (1.0 - p)


class GRC(nn.Module):
    """Gated Recursive Cell: ``parent = LN(s(g1)*l + s(g2)*r + s(g3)*u)``.

    ``h = GELU(W1 [l; r])`` (2D -> 4D), dropout on h, ``[g1, g2, g3, u] = W2 h`` (4D -> 4D).

    Args: ``left``, ``right``: ``(..., D)``. Returns: ``(..., D)``.
    """

    def __init__(self, hidden_size: int, expansion: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        d = hidden_size
        self.hidden_size = d
        self.w1 = nn.Linear(2 * d, expansion * d)
        self.w2 = nn.Linear(expansion * d, 4 * d)
        self.dropout = dropout
        self.norm = nn.LayerNorm(d)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.w1(torch.cat([left, right], dim=-1)))  # (..., 4D)
        h = fast_dropout(h, self.dropout, self.training)
        g1, g2, g3, u = self.w2(h).chunk(4, dim=-1)  # 4 x (..., D)
        mixed = torch.sigmoid(g1) * left + torch.sigmoid(g2) * right + torch.sigmoid(g3) * u
        return self.norm(mixed)  # (..., D)


class ChildScorer(nn.Module):
    """EBT's merge scorer: ``s = MLP([l[:S]; r[:S]])`` with S = ``slice_size`` (64 in the paper).

    It reads the children only, so a pair can be scored without composing it. The first layer is
    split into a left and a right projection, so that per-node projections can be carried between
    steps; :meth:`pair_scores` is the plain form used by the reference implementation.
    """

    def __init__(self, slice_size: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.slice_size = slice_size
        self.proj = nn.Linear(2 * slice_size, hidden)  # Linear(128, 64)
        self.out = nn.Linear(hidden, 1)  # Linear(64, 1)

    def pair_scores(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Scores of pairs ``(..., D), (..., D) -> (...)``."""
        s = self.slice_size
        h = F.gelu(self.proj(torch.cat([left[..., :s], right[..., :s]], dim=-1)))
        return self.out(h).squeeze(-1)


class ParentScorer(nn.Module):
    """BT-GRC's scorer: a Linear(D, 1) of each composed parent."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, parents: torch.Tensor) -> torch.Tensor:
        return self.out(parents).squeeze(-1)
