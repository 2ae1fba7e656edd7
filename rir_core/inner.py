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


def top_k_stable(x: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest entries of each row of ``x (N, M)``, largest first, ties to
    the lower index: ``torch.sort(x, descending=True, stable=True).indices[:, :k]``.

    A stable sort of every row is slow on CPU (about 250 us for 34 rows of 203, against 20 us
    for ``topk``), and ``topk`` orders ties arbitrarily. So float32 keys are made distinct first:
    the float's bits, mapped to an int32 of the same order (negative floats have their magnitude
    bits flipped; ``+ 0.0`` turns -0.0 into 0.0), go in the high half of an int64 and the
    reversed index in the low half. Other dtypes take the sort.
    """
    if x.dtype != torch.float32:
        return torch.sort(x, dim=-1, descending=True, stable=True).indices[:, :k]
    bits = (x + 0.0).view(torch.int32)  # (N, M)
    bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # int32 in the order of the floats
    index = torch.arange(x.shape[-1], device=x.device)  # (M,)
    key = (bits.long() << 32) - index  # (N, M) distinct; equal floats: lower index larger
    return torch.topk(key, k, dim=-1).indices


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
        # The pool holds the initial nodes, then K new parents per sequence and step (rows
        # n_init + t*N*K + n*K + k). Beams that start as copies of one row (an expanded K axis:
        # the leaves at RIR's level 0, or a whole input for EBT-GRC) share its pool rows and its
        # first pair scores.
        shared = beams > 1 and nodes.stride(1) == 0
        first = nodes[:, :1] if shared else nodes  # (N, 1 or K, Lt, D)
        n_init = first.shape[0] * first.shape[1] * max_len
        pool = NodePool(n_init + n_seq * beams * max(max_len - 1, 0), d, nodes)
        token = pool.write_block(0, first.reshape(n_init, d), None)
        ptr = torch.arange(n_init, device=device).view(n_seq, -1, max_len)  # (N, 1 or K, Lt)
        ptr = ptr.expand(n_seq, beams, max_len)  # (N, K, Lt)
        new_ids = torch.arange(n_seq * beams, device=device).view(n_seq, beams)  # (N, K)
        pair_scores = None
        if not self.parent_scoring:
            pair_scores = self.child_scorer.pair_scores(first[:, :, :-1], first[:, :, 1:])
            pair_scores = pair_scores.expand(n_seq, beams, max_len - 1)  # (N, K, Lt-1)
        # Step-invariant index tensors, built once: the loop only takes views of them.
        all_pos = torch.arange(max(max_len - 1, 1), device=device)  # (L-1,) pair positions
        pairs_left = (lengths - 1)[None, :] - all_pos[:, None]  # (T, N) real pairs at step t
        near_offs = torch.tensor([-1, 0, 1, 2], device=device)  # j-1, j, j+1, j+2
        if self.training:  # the Gumbel coordinates hashed once, all but step, beam, position
            noise_hash = rng.hash_coords(
                keys.seeds[:, None, None], rng.GUMBEL, keys.level, keys.chunk[:, None, None]
            )  # (N, 1, 1)
            beam_key = rng.coord_key(beam_ids[None, :, None])  # (1, K, 1)
            pos_key = rng.coord_key(all_pos[None, None, :])  # (1, 1, L-1)
        for t in range(max_len - 1):
            width = max_len - t  # current tensor width Lt
            n_pairs = width - 1
            active = pairs_left[t] > 0  # (N,)
            pos_ids = all_pos[:n_pairs]  # (Lt-1,)
            pair_ok = pos_ids < pairs_left[t][:, None]  # (N, Lt-1)

            # 1. Score every adjacent pair of every beam.
            if self.parent_scoring:
                row_vecs = pool.read(ptr, token)  # (N, K, Lt, D)
                parents_all = self.cell(row_vecs[:, :, :-1], row_vecs[:, :, 1:])  # (N, K, Lt-1, D)
                raw = self.parent_scorer(parents_all)  # (N, K, Lt-1)
            else:
                raw = pair_scores  # (N, K, Lt-1)
            raw = raw.to(scores.dtype)  # scores stay in float32 (or float64) under autocast
            logp = torch.where(pair_ok[:, None, :], raw, NEG).log_softmax(-1)  # (N, K, Lt-1)

            # 2-3. Candidates: every (beam, position) with key = beam score + log p (Gumbel-
            # perturbed in training); keep the best K. At eval one top-K over all K x (Lt-1)
            # candidates picks the same K as the paper's two stages (top-k positions per beam,
            # then the best K of those K x k): a candidate in the overall best K has fewer than K
            # better ones in its own beam. Ties go to the lower (beam, position) in both. In
            # training SPEC 2 (and the authors' code) draw noise twice, per beam and then again
            # over the K x k candidates; this draws it once, so its sampled trees vary less
            # (tests/authors_training.py has the two draws, for an A/B: issue #16).
            keys_pos = logp
            if self.training:  # rng.gumbel(seed, GUMBEL, level, chunk, t, beam, position)
                h = rng.extend_with_key(rng.extend(noise_hash, t), beam_key)  # (N, K, 1)
                h = rng.extend_with_key(h, pos_key[..., :n_pairs])  # (N, K, Lt-1)
                keys_pos = logp + rng.gumbel_from_hash(h, dtype=logp.dtype)
            cand_ok = pair_ok[:, None, :] & valid[:, :, None]  # (N, K, Lt-1)
            cand_key = torch.where(cand_ok, scores.detach()[:, :, None] + keys_pos, -torch.inf)
            pick = top_k_stable(cand_key.flatten(1), beams)  # (N, K) flat candidate index
            new_scores = (scores[:, :, None] + logp).flatten(1).gather(1, pick)  # (N, K)
            new_valid = cand_ok.flatten(1).gather(1, pick)  # (N, K)
            parent = torch.div(pick, n_pairs, rounding_mode="floor")  # (N, K) parent beam
            pos = pick - parent * n_pairs  # (N, K) merge position j
            # Finished sequences: identity (beam k stays k, merge "position" past the end).
            a = active[:, None]  # (N, 1)
            parent = torch.where(a, parent, beam_ids)
            pos = torch.where(a, pos, n_pairs)

            # 4. Compose the surviving pairs; splice pointers (integers, not vectors).
            row = ptr.gather(1, parent[..., None].expand(-1, -1, width))  # (N, K, Lt) parent rows
            j = pos.clamp(max=width - 2)
            near = row.gather(2, (j[..., None] + near_offs).clamp_(0, width - 1))  # (N, K, 4)
            near_vec = pool.read(near, token)  # (N, K, 4, D)
            # The children j, j+1 are adjacent in near_vec: [l; r] is a view, not a copy.
            # (BT-GRC recomputes the kept parents: the same function of the same children.)
            parents = self.cell.compose(near_vec[:, :, 1:3].flatten(-2))  # (N, K, D)
            first_new = n_init + t * n_seq * beams
            token = pool.write_block(first_new, parents.reshape(-1, d), token)
            # New position i holds old node i before j, the parent at j, old node i + 1 after.
            at_pos = pos_ids == pos[..., None]  # (N, K, Lt-1)
            src = torch.where(pos_ids > pos[..., None], pos_ids + 1, pos_ids)  # (N, K, Lt-1)
            ptr = torch.where(at_pos, (new_ids + first_new)[..., None], row.gather(2, src))

            if not self.parent_scoring and width > 2:
                # Carry pair scores from the parent beam; only pairs j-1 and j are new. New
                # pair i is old pair i before j - 1 and old pair i + 1 after j: ``src`` again.
                p_ids = all_pos[: width - 2]  # (Lt-2,) new pairs
                carried = pair_scores.gather(1, parent[..., None].expand(-1, -1, n_pairs))
                carried = carried.gather(2, src[..., :-1])  # (N, K, Lt-2)
                fresh = self.child_scorer.pair_scores(
                    torch.stack([near_vec[:, :, 0], parents], dim=2),
                    torch.stack([parents, near_vec[:, :, 3]], dim=2),
                )  # (N, K, 2): pairs (j-1, j) and (j, j+1)
                new_pairs = torch.where(p_ids == (pos - 1)[..., None], fresh[..., :1], carried)
                pair_scores = torch.where(at_pos[..., :-1], fresh[..., 1:], new_pairs)

            # 5. Sequences already reduced carry their state.
            if recorder.enabled:
                self._record(recorder, t, active, logp, keys_pos, pair_ok, valid, scores,
                             parent, pos, new_scores, new_valid)  # fmt: skip
            scores = torch.where(a, new_scores, scores)
            valid = torch.where(a, new_valid, valid)
        roots = pool.read(ptr[:, :, :1], token)  # (N, K, 1, D)
        return BeamState(nodes=roots, scores=scores, valid=valid)

    @staticmethod
    def _record(
        recorder,
        t,
        active,
        logp,
        keys_pos,
        pair_ok,
        valid,
        scores,
        parent,
        pos,
        new_scores,
        new_valid,
    ) -> None:  # noqa: ANN001
        """Hands one step to the recorder, with the candidates in the paper's two-stage form.

        The trace lists, per sequence, the K x k candidates of stage 2: each beam's top
        ``k = min(K, #pairs)`` positions. A survivor is a candidate whose (beam, position) was
        picked; the single sort of :meth:`forward` only picks from these.
        """
        beams = valid.shape[1]
        k_pos = min(beams, logp.shape[-1])
        masked = keys_pos.masked_fill(~pair_ok[:, None, :], float("-inf"))
        top_pos = torch.sort(masked.detach(), dim=-1, descending=True, stable=True).indices
        top_pos = top_pos[..., :k_pos]  # (N, K, k)
        top_ok = pair_ok[:, None, :].expand(-1, beams, -1).gather(-1, top_pos)
        cand_ok = (top_ok & valid[:, :, None]).flatten(1)  # (N, K*k)
        cand_score = (scores[:, :, None] + logp.gather(-1, top_pos)).flatten(1)  # (N, K*k)
        cand_parent = torch.arange(beams * k_pos, device=logp.device) // k_pos  # (K*k,)
        cand_pos = top_pos.flatten(1)  # (N, K*k)
        # Candidate index of each surviving beam's (parent, position); -1 if it is not listed
        # (only the padding picks of invalid beams can be missing).
        same = (cand_parent[None, None, :] == parent[..., None]) & (
            cand_pos[:, None, :] == pos[..., None]
        )  # (N, K, K*k)
        pick = torch.where(same.any(-1) & new_valid, same.long().argmax(-1), -1)  # (N, K)
        recorder.inner_step(
            step=t,
            active=active,
            logp=logp,
            pair_ok=pair_ok,
            parent=parent,
            pos=pos,
            scores=new_scores,
            valid=new_valid,
            cand_parent=cand_parent,
            cand_pos=cand_pos,
            cand_score=cand_score,
            cand_ok=cand_ok,
            pick=pick,
        )
