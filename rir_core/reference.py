"""A slow, readable reference of the whole forward pass, one example at a time.

This is the file to read next to the paper. It computes exactly what the batched model
(:mod:`rir_core.inner`, :mod:`rir_core.outer`, :mod:`rir_core.align`) computes, but with plain
Python: lists of per-node vectors ``(D,)``, Python floats for scores, explicit loops over outer
levels, chunks, inner steps and beams. It reuses the model's *parameters* (embedding, S4D through
its step-by-step recurrent path, leaf transform, GRC cell, merge scorers, head) and none of the
batched search, chunking or alignment code, so the tests can use it as an independent oracle.

Eval mode only: no dropout and no Gumbel noise. The alignment draws of ``sample`` and ``random``
happen at eval too; they use the same counter-based random stream (:mod:`rir_core.rng`) as the
batched model, keyed by ``(seed, ALIGN, level, chunk, slot)``, so a seed fixes both.

Glossary (code -> paper / SPEC):
``K`` beam size, ``W`` chunk width (k in the paper), a *slot* is one of the K sequences an outer
level carries (SPEC 4), a *chunk* is a span of at most W consecutive nodes reduced by one inner
recursion (SPEC 3), ``logp`` is ``log p_j`` of SPEC 2 step 2.

Conventions of the batched implementation reproduced here (each one is tested):

* Leaves start as K slots: slot 0 is valid with score 0, slots 1..K-1 are invalid copies.
  Invalid beams are carried along but never win against a valid candidate; when fewer than K
  valid candidates exist, the missing beams are filled with invalid candidates ("fillers") in
  (beam, position) order, over the ``Lt - 1`` positions of the batched tensor, where ``Lt`` is
  the widest chunk of the level minus the steps done, not the chunk's own width. (The batched
  model takes the top K of all ``K x (Lt - 1)`` candidates at once; the invalid ones come last,
  in that order.) This only decides which fillers an invalid beam gets, never a valid beam.
* A filler at a position beyond the real pairs leaves the real nodes of its row unchanged except
  that the row loses its last node (the batched row merges padding there).
* Invalid beams get score ``-inf`` here (the batched model keeps a meaningless finite number);
  their scores never reach the output.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import torch

from rir_core import rng
from rir_core.config import Alignment
from rir_core.vocab import TOKEN_TO_ID

Tree = Any  # a token index, or [left, right]
NEG_INF = float("-inf")


@dataclass
class Beam:
    """One beam of one chunk: its current nodes, their trees, its log-score and validity."""

    nodes: list[torch.Tensor]  # L vectors of shape (D,)
    trees: list[Tree]  # L trees over token positions
    score: float  # accumulated log-probability (SPEC 2 step 3)
    valid: bool


@dataclass
class Slot:
    """One of the K sequences of an outer level: a node per chunk root below, with its score."""

    nodes: list[torch.Tensor]  # (D,) each
    trees: list[Tree]
    node_scores: list[float]  # score of the chunk beam each node is the root of
    valid: bool


# ------------------------------------------------------------------------------------------
# SPEC 3: the chunk schedule


def chunk_sizes(n: int, width: int | None) -> list[int]:
    """Chunk sizes of one level of ``n`` nodes (SPEC 3).

    Cut into ``ceil(n / W)`` chunks of width W (the last one shorter) iff ``n >= 1.5 W``
    (written ``2n >= 3W`` to stay in integers); otherwise the whole level is one chunk.
    ``width`` None (EBT-GRC, BT-GRC) never chunks.
    """
    if width is None or 2 * n < 3 * width:
        return [n]
    sizes = []
    while n > 0:
        sizes.append(min(width, n))
        n -= width
    return sizes


# ------------------------------------------------------------------------------------------
# SPEC 2: one inner recursion (EBT-GRC or BT-GRC beam search over one chunk)


def _pair_logprobs(model, nodes: list[torch.Tensor]) -> tuple[list[float], list[torch.Tensor]]:
    """SPEC 2 steps 1-2 for one beam: ``log p_j`` of every adjacent pair ``(j, j+1)``.

    EBT-GRC scores a pair from its two children only (``ChildScorer``). BT-GRC composes every
    pair with the cell and scores the parent (``ParentScorer``); the parents are returned so
    that the chosen one need not be composed again. Returns ``(logp, parents or [])``.
    """
    inner = model.encoder.inner
    left = torch.stack(nodes[:-1])  # (L-1, D)
    right = torch.stack(nodes[1:])  # (L-1, D)
    parents: list[torch.Tensor] = []
    if inner.parent_scorer is not None:  # BT-GRC
        composed = inner.cell(left, right)  # (L-1, D)
        raw = inner.parent_scorer(composed)  # (L-1,)
        parents = list(composed)
    else:  # EBT-GRC
        raw = inner.child_scorer.pair_scores(left, right)  # (L-1,)
    return raw.log_softmax(-1).tolist(), parents


@dataclass
class _Candidate:
    beam: int  # the beam it extends
    rank: int  # its rank in that beam's top list (-1: a filler)
    position: int  # merge position j: nodes j and j+1 become one
    score: float  # beam score + log p_j (-inf when invalid)
    valid: bool


def inner_search(
    model, beams: list[Beam], tensor_width: int, record: list | None = None
) -> list[Beam]:
    """Reduce one chunk to a single node per beam (SPEC 2), returning the K final beams.

    Args:
        beams: the K beams the chunk starts with (all of the chunk's length).
        tensor_width: the width of the batched tensor this chunk lives in (the widest chunk
            of its level); it only decides which fillers invalid beams get.
        record: if given, one list per step is appended: for each new beam a dict with the
            ``parent`` beam, the merge ``position``, the ``score`` and ``valid``.
    """
    n_beams = len(beams)
    length = len(beams[0].nodes)
    for t in range(length - 1):
        n_pairs = length - t - 1  # real pairs of every beam at this step
        top_len = min(n_beams, n_pairs)  # kk = min(K, #pairs)

        # Steps 1-2: per beam, log p of every pair and its top positions (ties: lower index).
        candidates: list[_Candidate] = []
        beam_parents: list[list[torch.Tensor]] = []
        for k, beam in enumerate(beams):
            logp, parents = _pair_logprobs(model, beam.nodes)
            beam_parents.append(parents)
            if not beam.valid:
                continue
            ranked = sorted(range(n_pairs), key=lambda j, lp=logp: (-lp[j], j))[:top_len]
            # Step 3: candidate score = beam score + log p_j (beam-major order, k * kk + r).
            for r, j in enumerate(ranked):
                candidates.append(_Candidate(k, r, j, beam.score + logp[j], True))

        # Step 3: keep the K best candidates (stable: ties to the lower candidate index); if
        # there are fewer than K, fill up with invalid ones in (beam, position) order.
        good = sorted(candidates, key=lambda c: -c.score)
        fillers = [
            _Candidate(k, -1, j, NEG_INF, False)
            for k, beam in enumerate(beams)
            for j in range(tensor_width - t - 1)
            if not (beam.valid and j < n_pairs)
        ]
        kept = (good + fillers)[:n_beams]

        # Step 4: compose the kept pairs with the GRC cell and splice each parent in.
        new_beams = []
        for c in kept:
            src, j = beams[c.beam], c.position
            if j < n_pairs:
                if beam_parents[c.beam]:  # BT-GRC: already composed while scoring
                    parent = beam_parents[c.beam][j]
                else:
                    parent = model.encoder.inner.cell(src.nodes[j], src.nodes[j + 1])  # (D,)
                nodes = src.nodes[:j] + [parent] + src.nodes[j + 2 :]
                trees = src.trees[:j] + [[src.trees[j], src.trees[j + 1]]] + src.trees[j + 2 :]
            else:  # a filler merging padding: the real row just loses its last node
                nodes, trees = src.nodes[:-1], src.trees[:-1]
            new_beams.append(Beam(nodes, trees, c.score, c.valid))
        if record is not None:
            record.append(
                [
                    {"parent": c.beam, "position": c.position, "score": c.score, "valid": c.valid}
                    for c in kept
                ]
            )
        beams = new_beams
    return beams


# ------------------------------------------------------------------------------------------
# SPEC 4: beam alignment between outer levels


def _uniform(seed: int, level: int, chunk: int, slot: int) -> float:
    """The batched model's alignment draw for ``(seed, level, chunk, slot)``, in (0, 1)."""
    seed_t = torch.tensor(seed, dtype=torch.int64)
    return float(rng.uniform(seed_t, rng.ALIGN, level, chunk, slot, dtype=torch.float64))


def _draw(probs: list[float], valid: list[bool], u: float) -> int:
    """Inverse CDF: the first beam whose cumulative probability reaches ``u``.

    Written as "the number of CDF entries below u", clamped to the last valid beam (guards
    against the CDF ending a rounding error below 1).
    """
    cdf, total = [], 0.0
    for p in probs:
        total += p
        cdf.append(total)
    idx = sum(1 for x in cdf if x < u)
    last_valid = max(k for k, v in enumerate(valid) if v)
    return min(idx, last_valid)


def _softmax_valid(scores: list[float], valid: list[bool]) -> list[float]:
    top = max(s for s, v in zip(scores, valid, strict=True) if v)
    e = [math.exp(s - top) if v else 0.0 for s, v in zip(scores, valid, strict=True)]
    z = sum(e)
    return [x / z for x in e]


def align_reference(
    strategy: Alignment,
    chunk_beams: list[list[Beam]],
    seed: int,
    level: int,
) -> tuple[list[list[int]], list[bool]]:
    """Pick, for each of the K next-level slots, one beam of every chunk (SPEC 4).

    Returns ``picks[slot][chunk]`` (a beam index) and the validity of each slot.
    """
    n_chunks, n_slots = len(chunk_beams), len(chunk_beams[0])
    scores = [[b.score for b in beams] for beams in chunk_beams]
    valid = [[b.valid for b in beams] for beams in chunk_beams]
    if strategy == Alignment.RANK:
        # Slot s takes beam s of every chunk, or the chunk's best beam if it has no beam s.
        picks = [[s if valid[c][s] else 0 for c in range(n_chunks)] for s in range(n_slots)]
        return picks, [True] * n_slots
    if strategy == Alignment.KBEST:
        return _kbest_heap(scores, valid, n_slots)
    # sample / random: slot 0 = every chunk's best beam (beam 0), the others drawn per chunk.
    picks = [[0] * n_chunks]
    for s in range(1, n_slots):
        row = []
        for c in range(n_chunks):
            if strategy == Alignment.SAMPLE:
                probs = _softmax_valid(scores[c], valid[c])
            else:  # RANDOM: uniform over the chunk's valid beams
                count = sum(valid[c])
                probs = [1.0 / count if v else 0.0 for v in valid[c]]
            row.append(_draw(probs, valid[c], _uniform(seed, level, c, s)))
        picks.append(row)
    return picks, [True] * n_slots


def _kbest_heap(
    scores: list[list[float]], valid: list[list[bool]], k: int
) -> tuple[list[list[int]], list[bool]]:
    """The k highest-scoring combinations (one valid beam per chunk) by a lazy heap.

    Each chunk's valid beams are sorted best first; a combination is a tuple of ranks, the best
    one is all zeros, and the successors of a combination raise one rank by one. Popping the
    heap k times gives the k best sums (the classic k-best merge of sorted lists). When fewer
    than k combinations exist, the remaining slots are invalid (beam 0 everywhere).
    """
    ranked = [
        sorted((b for b in range(len(v)) if v[b]), key=lambda b, s=s: (-s[b], b))
        for s, v in zip(scores, valid, strict=True)
    ]

    def total(ranks: tuple[int, ...]) -> float:
        return sum(scores[c][ranked[c][r]] for c, r in enumerate(ranks))

    start = (0,) * len(ranked)
    heap = [(-total(start), start)]
    seen = {start}
    picks: list[list[int]] = []
    while heap and len(picks) < k:
        _, ranks = heapq.heappop(heap)
        picks.append([ranked[c][r] for c, r in enumerate(ranks)])
        for c in range(len(ranks)):
            if ranks[c] + 1 < len(ranked[c]):
                nxt = ranks[:c] + (ranks[c] + 1,) + ranks[c + 1 :]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (-total(nxt), nxt))
    slot_valid = [True] * len(picks) + [False] * (k - len(picks))
    picks += [[0] * len(ranked) for _ in range(k - len(picks))]
    return picks, slot_valid


# ------------------------------------------------------------------------------------------
# SPEC 1: the whole forward pass


def _leaves(model, ids: torch.Tensor) -> list[torch.Tensor]:
    """SPEC 1 steps 1-3: embedding, bidirectional S4D (recurrent path), leaf transform."""
    x = model.embedding(ids)  # (L, D); eval: no dropout
    if model.s4d is not None:
        mask = torch.ones(1, len(ids), dtype=torch.bool, device=ids.device)  # (1, L)
        x = model.s4d(x[None], mask, recurrent=True)[0]  # (L, D)
    return list(model.leaf(x))  # L vectors (D,)


def _balanced_reference(model, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, Tree, int]:
    """BBT-GRC: pair ``(0, 1), (2, 3), ...`` level by level; an odd last node is carried up."""
    cell = model.encoder.cell
    nodes, trees, depth = leaves, list(range(len(leaves))), 0
    while len(nodes) > 1:
        nxt_nodes, nxt_trees = [], []
        for i in range(0, len(nodes) - 1, 2):
            nxt_nodes.append(cell(nodes[i], nodes[i + 1]))
            nxt_trees.append([trees[i], trees[i + 1]])
        if len(nodes) % 2:
            nxt_nodes.append(nodes[-1])
            nxt_trees.append(trees[-1])
        nodes, trees, depth = nxt_nodes, nxt_trees, depth + 1
    return nodes[0], trees[0], depth


@torch.no_grad()
def reference_forward(
    model,
    tokens: list[str],
    seed: int = 0,
    alignment: Alignment | str | None = None,
    beam_size: int | None = None,
    chunk_width: int | None = None,
) -> dict[str, Any]:
    """The model's forward pass on one token list, step by step (eval mode).

    ``tokens`` need not be a valid expression (any vocabulary tokens). Settings default to the
    model's config, as in the batched model.

    Returns a dict:
        ``logits`` ``(Y,)`` tensor; ``depth`` sequential merge steps performed;
        ``levels``: per outer level ``{"chunk_sizes", "merges", "alignment"}`` where
        ``merges[chunk][step][beam]`` is ``{"parent", "position", "score", "valid"}`` and
        ``alignment`` is ``{"picks": [slot][chunk], "slot_valid": [slot]}`` or None;
        ``final_beams``: ``{"tree", "score", "valid", "weight"}`` per beam.
    """
    if model.training:
        raise RuntimeError("reference_forward is eval-only: call model.eval() first.")
    settings = model.settings(beam_size, chunk_width, alignment)
    device = model.embedding.weight.device
    ids = torch.tensor([TOKEN_TO_ID[t] for t in tokens], device=device)  # (L,)
    leaves = _leaves(model, ids)
    n = len(leaves)

    if model.config.model_type == "bbt_grc":
        root, tree, depth = _balanced_reference(model, leaves)
        return {
            "logits": model.head(root),
            "depth": depth,
            "levels": [],
            "final_beams": [{"tree": tree, "score": 0.0, "valid": True, "weight": 1.0}],
        }

    k_beams, width = settings.beam_size, settings.chunk_width
    # SPEC 3, level 0: K slots over the leaves; only slot 0 is a real beam.
    slots = [Slot(list(leaves), list(range(n)), [0.0] * n, valid=(k == 0)) for k in range(k_beams)]
    levels: list[dict[str, Any]] = []
    depth = 0
    level = 0
    while True:
        sizes = chunk_sizes(len(slots[0].nodes), width)
        tensor_width = max(sizes)  # all chunks of a level share one batched tensor
        depth += tensor_width - 1
        info: dict[str, Any] = {"chunk_sizes": sizes, "merges": [], "alignment": None}
        levels.append(info)

        # Inner recursion per chunk; a chunk's beam k starts from slot k's nodes in the chunk,
        # with score = the sum of those nodes' scores (SPEC 3).
        chunk_beams: list[list[Beam]] = []
        start = 0
        for size in sizes:
            span = slice(start, start + size)
            beams = []
            for slot in slots:
                score = sum(slot.node_scores[span]) if slot.valid else NEG_INF
                beams.append(Beam(slot.nodes[span], slot.trees[span], score, slot.valid))
            record: list = []
            chunk_beams.append(inner_search(model, beams, tensor_width, record))
            info["merges"].append(record)
            start += size

        if len(sizes) == 1:
            final = chunk_beams[0]
            break

        # SPEC 4: beam alignment forms the K slots of the next level.
        picks, slot_valid = align_reference(settings.alignment, chunk_beams, seed, level)
        info["alignment"] = {"picks": picks, "slot_valid": slot_valid}
        slots = []
        for s in range(k_beams):
            chosen = [chunk_beams[c][picks[s][c]] for c in range(len(sizes))]
            slots.append(
                Slot(
                    nodes=[b.nodes[0] for b in chosen],
                    trees=[b.trees[0] for b in chosen],
                    node_scores=[b.score for b in chosen],
                    valid=slot_valid[s],
                )
            )
        level += 1

    # SPEC 1 step 5: roots weighted by the softmax of the valid final beam scores.
    weights = _softmax_valid([b.score for b in final], [b.valid for b in final])
    pooled = sum(w * b.nodes[0] for w, b in zip(weights, final, strict=True))  # (D,)
    # SPEC 1 step 6: the head (eval: no dropout).
    logits = model.head(pooled)  # (Y,)
    return {
        "logits": logits,
        "depth": depth,
        "levels": levels,
        "final_beams": [
            {"tree": b.trees[0], "score": b.score, "valid": b.valid, "weight": w}
            for b, w in zip(final, weights, strict=True)
        ],
    }


__all__ = [
    "Beam",
    "Slot",
    "align_reference",
    "chunk_sizes",
    "inner_search",
    "reference_forward",
]
