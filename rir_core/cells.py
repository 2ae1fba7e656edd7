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
    """Inverted dropout whose mask comes from random bits, four 15-bit lanes per 64-bit draw.

    On CPU, ``rand_like`` (one float per element) and ``bernoulli_`` cost 3-4 ms for a
    ``(896, 512)`` activation, 8% of a training step; 64-bit random integers cut into four lanes
    cost 0.5 ms. Each lane is uniform on ``[0, 2^15)`` and an element is dropped when its lane is
    below ``round(p * 2^15)``, so the drop probability is ``p`` to within ``2^-16`` (0.1 ->
    0.100006). Draws from torch's global RNG (its state is part of a resume checkpoint).
    """
    if not training or p == 0.0:
        return x
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_()
    lanes = bits.view(torch.int16)[:n].view(x.shape) & 0x7FFF  # (..) uniform on [0, 2^15)
    keep = lanes >= round(p * 32768)
    return x * keep / (1.0 - p)


class FastDropout(nn.Module):
    """``nn.Dropout`` with the mask of :func:`fast_dropout` (same state: none; same ``p``)."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


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
        return self.compose(torch.cat([left, right], dim=-1))

    def compose(self, pair: torch.Tensor) -> torch.Tensor:
        """The cell on ``pair = [l; r]`` ``(..., 2D)``, which may be a strided view.

        The beam search reads a merge's two children as adjacent rows of one gathered tensor, so
        ``[l; r]`` is a view there and the concatenation costs nothing.
        """
        d = self.hidden_size
        left, right = pair[..., :d], pair[..., d:]  # (..., D) views
        h = F.gelu(self.w1(pair))  # (..., 4D)
        h = fast_dropout(h, self.dropout, self.training)
        z = self.w2(h)  # (..., 4D): [g1, g2, g3, u]
        g1, g2, g3 = torch.sigmoid(z[..., : 3 * d]).chunk(3, dim=-1)  # 3 x (..., D), one kernel
        mixed = torch.addcmul(torch.addcmul(g3 * z[..., 3 * d :], g1, left), g2, right)
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
