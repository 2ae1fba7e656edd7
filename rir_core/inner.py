"""Inner recursion: the EBT-GRC (or BT-GRC) beam search over merges, for a batch of sequences.

This module knows nothing of chunks: it reduces ``N`` independent sequences (whole inputs for
EBT-GRC, chunks for RIR) to one root per beam. One step (SPEC section 2, numbered as there):

1. score every adjacent pair of every beam (EBT: from the children only; BT: from the composed
   parents of all pairs);
2. per beam, ``log p = log_softmax(scores)`` over the valid pairs and the top ``min(K, #pairs)``
   positions (Gumbel-perturbed in training, exact at eval, ties to the lower index);
3. candidate score = beam score + log p; keep the best K of the K x k candidates;
4. compose only the K surviving pairs (EBT) and splice each parent into its row;
5. sequences already reduced to one node carry their state along.

Efficiency (EBT): pair scores depend on the two children only, so after a merge at ``j`` only the
pairs ``(j-1, j)`` and ``(j, j+1)`` are new; the others are carried (gathered) from the parent
beam. A step therefore runs the cell on ``N*K`` pairs and the scorer on ``2*N*K`` pairs, whatever
the length. There is no host synchronisation inside the loop: validity is tracked with masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rir_core import rng
from rir_core.cells import GRC, ChildScorer, ParentScorer
from rir_core.pool import NodePool

#: Finite stand-in for -inf in masked logits, so that all-masked rows stay finite (no NaN grads).
NEG = -1e9


@dataclass
class BeamState:
    """Beam state of ``N`` sequences: node vectors, accumulated log-scores and beam validity."""

    nodes: torch.Tensor  # (N, K, L, D)
    scores: torch.Tensor  # (N, K)
    valid: torch.Tensor  # (N, K) bool


@dataclass
class StreamKeys:
    """Coordinates of a sequence's random stream: its example's seed, outer level, chunk index."""

    seeds: torch.Tensor  # (N,) int64
    chunk: torch.Tensor  # (N,) int64: index of the chunk inside its example
    level: int = 0


class NullRecorder:
    """Records nothing: the normal path pays one attribute check per call site."""

    enabled = False


class BeamSearch(nn.Module):
    """Batched beam search over merges.

    Args: ``parent_scoring`` False for EBT-GRC (score children, compose survivors only), True for
    BT-GRC (compose all pairs, score the parents).
    """

    def __init__(
        self, cell: GRC, child_scorer: ChildScorer | None, parent_scorer: ParentScorer | None
    ) -> None:
        super().__init__()
        self.cell = cell
        self.child_scorer = child_scorer
        self.parent_scorer = parent_scorer
        self.parent_scoring = parent_scorer is not None

    def forward(
        self, state: BeamState, lengths: torch.Tensor, max_len: int, keys: StreamKeys, recorder=None
    ) -> BeamState:
        """Reduce every sequence to one node per beam.

        Args:
            state: nodes ``(N, K, L, D)`` with ``L >= max_len``; real nodes are a prefix.
            lengths: ``(N,)`` real node counts (>= 1), on the model's device.
            max_len: ``max(lengths)`` as a host int (known from the chunk schedule).
            keys: random-stream coordinates, used for Gumbel noise in training.
        Returns:
            the final state; ``nodes`` is ``(N, K, 1, D)``: each beam's root.
        """
        recorder = recorder or NullRecorder()
        nodes, scores, valid = state.nodes[:, :, :max_len], state.scores, state.valid
        n_seq, beams = scores.shape
        d = nodes.shape[-1]
        device = nodes.device
        beam_ids = torch.arange(beams, device=device)
        seq_ids = torch.arange(n_seq, device=device)
        # The pool holds the initial nodes, then K new parents per sequence and step. Beams that
        # start as copies of one row (an expanded K axis: the leaves at RIR's level 0, or a
        # whole input for EBT-GRC) share its pool rows and its first pair scores.
        shared = beams > 1 and nodes.stride(1) == 0
        first = nodes[:, :1] if shared else nodes  # (N, 1 or K, Lt, D)
        n_init = first.shape[0] * first.shape[1] * max_len
        pool = NodePool(n_init + n_seq * beams * max(max_len - 1, 0), d, nodes)
        token = pool.write(torch.arange(n_init, device=device), first.reshape(n_init, d), None)
        ptr = torch.arange(n_init, device=device).view(n_seq, -1, max_len)  # (N, 1 or K, Lt)
        ptr = ptr.expand(n_seq, beams, max_len)  # (N, K, Lt)
        pair_scores = None
        if not self.parent_scoring:
            pair_scores = self.child_scorer.pair_scores(first[:, :, :-1], first[:, :, 1:])
            pair_scores = pair_scores.expand(n_seq, beams, max_len - 1)  # (N, K, Lt-1)
        for t in range(max_len - 1):
            width = max_len - t  # current tensor width Lt
            cur_len = (lengths - t).clamp(min=1)  # (N,)
            active = cur_len > 1  # (N,)
            pos_ids = torch.arange(width - 1, device=device)  # (Lt-1,)
            pair_ok = pos_ids[None, :] < (cur_len - 1)[:, None]  # (N, Lt-1)

            # 1. Score every adjacent pair of every beam.
            if self.parent_scoring:
                row_vecs = pool.read(ptr, token)  # (N, K, Lt, D)
                parents_all = self.cell(row_vecs[:, :, :-1], row_vecs[:, :, 1:])  # (N, K, Lt-1, D)
                raw = self.parent_scorer(parents_all)  # (N, K, Lt-1)
            else:
                raw = pair_scores  # (N, K, Lt-1)
            raw = raw.to(scores.dtype)  # scores stay in float32 (or float64) under autocast
            logp = raw.masked_fill(~pair_ok[:, None, :], NEG).log_softmax(-1)  # (N, K, Lt-1)

            # 2. Per beam, the top-k positions (Gumbel-perturbed keys in training).
            keys_pos = logp
            if self.training:
                noise = rng.gumbel(
                    keys.seeds[:, None, None],
                    rng.GUMBEL,
                    keys.level,
                    keys.chunk[:, None, None],
                    t,
                    beam_ids[None, :, None],
                    pos_ids[None, None, :],
                    dtype=logp.dtype,
                )
                keys_pos = logp + noise
            keys_pos = keys_pos.masked_fill(~pair_ok[:, None, :], float("-inf"))
            k_pos = min(beams, width - 1)
            order = torch.sort(keys_pos.detach(), dim=-1, descending=True, stable=True).indices
            top_pos = order[..., :k_pos]  # (N, K, k)
            top_logp = logp.gather(-1, top_pos)  # (N, K, k)
            top_key = keys_pos.gather(-1, top_pos)  # (N, K, k)
            top_ok = pair_ok[:, None, :].expand(-1, beams, -1).gather(-1, top_pos)
            top_ok = top_ok & valid[:, :, None]  # (N, K, k)

            # 3. Candidates: beam score + log p; keep the best K.
            cand_score = (scores[:, :, None] + top_logp).flatten(1)  # (N, K*k)
            cand_key = (scores[:, :, None].detach() + top_key).flatten(1)
            cand_ok = top_ok.flatten(1)  # (N, K*k)
            cand_key = cand_key.masked_fill(~cand_ok, float("-inf"))
            pick = torch.sort(cand_key, dim=-1, descending=True, stable=True).indices[:, :beams]
            parent = torch.div(pick, k_pos, rounding_mode="floor")  # (N, K) parent beam
            pos = top_pos.flatten(1).gather(1, pick)  # (N, K) merge position j
            new_scores = cand_score.gather(1, pick)  # (N, K)
            new_valid = cand_ok.gather(1, pick)  # (N, K)
            # Finished sequences: identity (beam k stays k, merge "position" past the end).
            a = active[:, None]  # (N, 1)
            parent = torch.where(a, parent, beam_ids[None, :])
            pos = torch.where(a, pos, width - 1)

            # 4. Compose the surviving pairs; splice pointers (integers, not vectors).
            row = ptr.gather(1, parent[..., None].expand(-1, -1, width))  # (N, K, Lt) parent rows
            j = pos.clamp(max=width - 2)
            offs = torch.tensor([-1, 0, 1, 2], device=device)  # j-1, j, j+1, j+2
            near = row.gather(2, (j[..., None] + offs).clamp(0, width - 1))  # (N, K, 4)
            near_vec = pool.read(near, token)  # (N, K, 4, D)
            # (BT-GRC recomputes the kept parents: the same function of the same children.)
            parents = self.cell(near_vec[:, :, 1], near_vec[:, :, 2])  # (N, K, D)
            new_rows = n_init + t * n_seq * beams + seq_ids[:, None] * beams + beam_ids  # (N, K)
            token = pool.write(new_rows.flatten(), parents.reshape(-1, d), token)
            out_ids = pos_ids[None, None, :]  # (1, 1, Lt-1) new positions
            src = out_ids + (out_ids > pos[..., None]).long()  # (N, K, Lt-1)
            ptr = torch.where(out_ids == pos[..., None], new_rows[..., None], row.gather(2, src))

            if not self.parent_scoring and width > 2:
                # Carry pair scores from the parent beam; only pairs j-1 and j are new.
                p_ids = torch.arange(width - 2, device=device)[None, None, :]  # new pairs
                p_src = p_ids + (p_ids >= pos[..., None]).long()  # (N, K, Lt-2)
                carried = pair_scores.gather(1, parent[..., None].expand(-1, -1, width - 1))
                carried = carried.gather(2, p_src)  # (N, K, Lt-2)
                fresh = self.child_scorer.pair_scores(
                    torch.stack([near_vec[:, :, 0], parents], dim=2),
                    torch.stack([parents, near_vec[:, :, 3]], dim=2),
                )  # (N, K, 2): pairs (j-1, j) and (j, j+1)
                new_pairs = torch.where(p_ids == (pos - 1)[..., None], fresh[..., :1], carried)
                pair_scores = torch.where(p_ids == pos[..., None], fresh[..., 1:], new_pairs)

            # 5. Sequences already reduced carry their state.
            if recorder.enabled:
                recorder.inner_step(
                    step=t,
                    active=active,
                    logp=logp,
                    pair_ok=pair_ok,
                    parent=parent,
                    pos=pos,
                    scores=new_scores,
                    valid=new_valid,
                    cand_parent=torch.div(
                        torch.arange(beams * k_pos, device=device), k_pos, rounding_mode="floor"
                    ),
                    cand_pos=top_pos.flatten(1),
                    cand_score=cand_score,
                    cand_ok=cand_ok,
                    pick=pick,
                )
            scores = torch.where(a, new_scores, scores)
            valid = torch.where(a, new_valid, valid)
        roots = pool.read(ptr[:, :, :1], token)  # (N, K, 1, D)
        return BeamState(nodes=roots, scores=scores, valid=valid)
