"""Outer recursion: Recursion in Recursion (SPEC section 3).

A sequence of ``n`` nodes, each with K beams, is cut into balanced chunks of width ``W`` (only
when ``n >= 1.5 W``; otherwise the whole remainder is one chunk), every chunk of every example is
reduced by the inner beam search as one batch, and beam alignment forms the K beams of the next
level. This module knows nothing of how a merge is scored: it only calls the inner search.

The chunk schedule depends only on lengths, so it is computed on the host before any tensor
work; inside a level nothing waits for the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rir_core.align import align
from rir_core.config import Alignment
from rir_core.inner import BeamSearch, BeamState, NullRecorder, StreamKeys


def chunk_sizes(n: int, width: int | None) -> list[int]:
    """Chunk sizes of one level with ``n`` nodes (``width`` None: never chunk)."""
    if width is None or 2 * n < 3 * width:  # n < 1.5 W
        return [n]
    count = math.ceil(n / width)
    return [width] * (count - 1) + [n - width * (count - 1)]


def batch_rule_chunk_sizes(n: int, width: int) -> list[int]:
    """Chunk sizes of a row under the batch rule (SPEC 7.1), once its batch is chunked at all:
    every row longer than W is cut into chunks of W and a tail, however short the tail."""
    if n <= width:
        return [n]
    count = math.ceil(n / width)
    return [width] * (count - 1) + [n - width * (count - 1)]


def schedule(n: int, width: int | None) -> list[list[int]]:
    """Chunk sizes of every level until one node remains."""
    levels = []
    while True:
        sizes = chunk_sizes(n, width)
        levels.append(sizes)
        if len(sizes) == 1:
            return levels
        n = len(sizes)


def depth_performed(n: int, width: int | None) -> int:
    """Sequential merge steps run for one input: sum over levels of (widest chunk - 1)."""
    return sum(max(sizes) - 1 for sizes in schedule(n, width))


def rir_bound(n: int, width: int) -> float:
    """The paper's bound on sequential depth, ``W * log_W(n)``."""
    return float(width * math.log(max(n, 1)) / math.log(width))


@dataclass
class LevelInput:
    """The aligned beams entering outer ``level`` (>= 1): what :meth:`OuterRecursion.forward`
    resumes from. ``nodes (B, K, n, D)``: slot k's node vectors; ``scores (B, K, n)``: the
    score of the chunk beam each node is; ``valid (B, K)``: the slots' validity."""

    level: int
    nodes: torch.Tensor
    scores: torch.Tensor
    valid: torch.Tensor


#: ``(level, picks (B, K, C), slot_valid (B, K)) -> (picks, slot_valid)``: see ``forward``.
Repick = Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LevelPlan:
    """Host-side chunk table of one level for the examples still running."""

    example: list[int]  # per chunk: example index
    start: list[int]  # per chunk: first node
    length: list[int]  # per chunk: node count
    index: list[int]  # per chunk: chunk index inside its example
    chunks_of: dict[int, list[int]]  # example -> its chunk rows


def plan_level(lengths: dict[int, int], width: int | None, batch_rule: bool = False) -> LevelPlan:
    """The chunks of one level. ``batch_rule``: decide on the batch's longest row, as the
    authors' training code does (SPEC 7.1): when it has at least 1.5 W nodes, every row longer
    than W is chunked (so a 31-44-token row beside a long one becomes [30, tail]); otherwise
    each row by its own length (SPEC 3, the model's definition and the default)."""
    plan = LevelPlan([], [], [], [], {})
    chunk_all = batch_rule and width is not None and 2 * max(lengths.values()) >= 3 * width
    for ex, n in lengths.items():
        start = 0
        rows = []
        sizes = batch_rule_chunk_sizes(n, width) if chunk_all else chunk_sizes(n, width)
        for ci, size in enumerate(sizes):
            rows.append(len(plan.example))
            plan.example.append(ex)
            plan.start.append(start)
            plan.length.append(size)
            plan.index.append(ci)
            start += size
        plan.chunks_of[ex] = rows
    return plan


class OuterRecursion(torch.nn.Module):
    """RIR over an inner beam search. With ``width=None`` it is the inner search alone (EBT-GRC).

    Forward args: ``leaves (B, L, D)``, host ``lengths`` (list of ints), ``seeds (B,)``.
    Returns roots ``(B, K, D)``, scores ``(B, K)``, validity ``(B, K)`` and the per-example
    sequential depth performed (list of ints).
    """

    #: Without autograd, one level's chunks run in groups whose node pools hold at most this
    #: many rows (D floats each: 16 MiB at D 128 in float32), shortest chunks first. A pool holds
    #: every node a level composes (about K x n rows for n tokens), so 16 inputs of 1,000 tokens
    #: would otherwise keep about 80 MiB of node vectors alive at once. Each chunk's search is
    #: independent of its batch neighbours, so the result is the same. Training keeps one call
    #: per level (its graph holds every pool anyway); so does a traced run, which records one
    #: batch of chunks per level (a single input fits one group up to about 4,000 tokens).
    pool_rows = 1 << 15

    def __init__(self, inner: BeamSearch) -> None:
        super().__init__()
        self.inner = inner

    def _inner_in_groups(
        self,
        state: BeamState,
        lengths: list[int],
        len_t: torch.Tensor,
        keys: StreamKeys,
    ) -> BeamState:
        """:attr:`inner` over groups of chunks of bounded pool size; rows keep their order."""
        beams = state.scores.shape[1]
        shared = beams > 1 and state.nodes.stride(1) == 0  # K copies of one row (level 0)

        def rows_needed(count: int, longest: int) -> int:  # NodePool rows of one group
            return count * (longest * (1 if shared else beams) + beams * (longest - 1))

        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        groups: list[list[int]] = [[]]
        for r in order:
            if groups[-1] and rows_needed(len(groups[-1]) + 1, lengths[r]) > self.pool_rows:
                groups.append([])
            groups[-1].append(r)
        if len(groups) == 1:
            return self.inner(state, len_t, max(lengths), keys)
        roots, scores, valid = [], [], []
        for group in groups:
            g = torch.tensor(group, device=len_t.device)
            longest = lengths[group[-1]]
            if shared:  # keep the K axis an expanded view, so the group shares its rows too
                nodes = state.nodes[g, :1, :longest].expand(-1, beams, -1, -1)
            else:
                nodes = state.nodes[g, :, :longest]
            sub = BeamState(nodes, state.scores[g], state.valid[g])
            sub_keys = StreamKeys(keys.seeds[g], keys.chunk[g], keys.level)
            out = self.inner(sub, len_t[g], longest, sub_keys)
            roots.append(out.nodes)
            scores.append(out.scores)
            valid.append(out.valid)
        inv = torch.empty(len(order), dtype=torch.long)
        inv[torch.tensor(order)] = torch.arange(len(order))
        inv = inv.to(len_t.device)
        return BeamState(torch.cat(roots)[inv], torch.cat(scores)[inv], torch.cat(valid)[inv])

    def forward(
        self,
        leaves: torch.Tensor,
        lengths: list[int],
        seeds: torch.Tensor,
        *,
        beams: int,
        width: int | None,
        alignment: Alignment,
        recorder=None,
        repick: Repick | None = None,
        start: LevelInput | None = None,
        batch_rule: bool = False,
    ):
        """See the class docstring. Two optional hooks, both off by default (then the result is
        the plain forward's, bit for bit), serve the alignment debugger's counterfactual:

        - ``repick(level, picks, slot_valid) -> (picks, slot_valid)`` may overwrite the
          alignment's choice after ``level`` (``picks (B, K, C)``) before the next level is
          built from it;
        - ``start`` resumes at ``start.level`` from given aligned beams instead of the leaves
          (``leaves`` then only gives B, D and the device; ``lengths`` are the node counts of
          that level, C of the level below).

        ``batch_rule`` (a training option, off by default) chunks by the batch's longest row,
        see :func:`plan_level`.
        """
        recorder = recorder or NullRecorder()
        bsz, _, d = leaves.shape
        device = leaves.device
        if start is None:
            # Level 0: one valid beam per example (K copies, only beam 0 valid).
            nodes = leaves[:, None].expand(bsz, beams, -1, -1)  # (B, K, n, D)
            # Beam scores accumulate in float32 at least, also under bf16 autocast.
            score_dtype = torch.promote_types(leaves.dtype, torch.float32)
            node_scores = torch.zeros(
                bsz, beams, leaves.shape[1], dtype=score_dtype, device=device
            )  # (B, K, n)
            beam_valid = (torch.arange(beams, device=device) == 0)[None].expand(bsz, -1)  # (B, K)
            level = 0
        else:
            if start.level < 1:
                raise ValueError("a resumed run starts after an alignment: level 1 or above.")
            nodes, node_scores, beam_valid = start.nodes, start.scores, start.valid
            level = start.level
        running = {b: n for b, n in enumerate(lengths)}
        depth = [0] * bsz
        final_rows: list[torch.Tensor] = []
        final_roots, final_scores, final_valid = [], [], []
        while running:
            plan = plan_level(running, width, batch_rule)
            for ex, rows in plan.chunks_of.items():
                depth[ex] += max(plan.length[r] for r in rows) - 1
            max_len = max(plan.length)
            ex_t = torch.tensor(plan.example, device=device)  # (N,)
            start_t = torch.tensor(plan.start, device=device)
            len_t = torch.tensor(plan.length, device=device)
            offs = torch.arange(max_len, device=device)  # (Lc,)
            in_chunk = offs[None, :] < len_t[:, None]  # (N, Lc)
            pos = (start_t[:, None] + offs[None, :]).clamp(max=nodes.shape[2] - 1)  # (N, Lc)
            if level == 0:  # the K beams are copies of the leaves: gather once, expand (no copy)
                chunk_nodes = leaves[ex_t[:, None], pos][:, None].expand(-1, beams, -1, -1)
            else:
                by_pos = nodes.transpose(1, 2)  # (B, n, K, D)
                chunk_nodes = by_pos[ex_t[:, None], pos].permute(0, 2, 1, 3)  # (N, K, Lc, D)
            chunk_node_scores = node_scores.transpose(1, 2)[ex_t[:, None], pos]  # (N, Lc, K)
            init = (chunk_node_scores * in_chunk[..., None]).sum(1)  # (N, K)
            state = BeamState(chunk_nodes, init, beam_valid[ex_t])
            if recorder.enabled:
                recorder.begin_level(level, plan, init, state.valid)
            keys = StreamKeys(seeds[ex_t], torch.tensor(plan.index, device=device), level)
            if width is None or recorder.enabled or torch.is_grad_enabled():
                out = self.inner(state, len_t, max_len, keys, recorder)
            else:
                out = self._inner_in_groups(state, plan.length, len_t, keys)
            roots = out.nodes[:, :, 0]  # (N, K, D)

            done = [ex for ex, rows in plan.chunks_of.items() if len(rows) == 1]
            if done:
                rows = torch.tensor([plan.chunks_of[ex][0] for ex in done], device=device)
                final_rows.append(torch.tensor(done, device=device))
                final_roots.append(roots[rows])
                final_scores.append(out.scores[rows])
                final_valid.append(out.valid[rows])
            going = [ex for ex, rows in plan.chunks_of.items() if len(rows) > 1]
            if not going:
                if recorder.enabled:
                    recorder.end_level(level, out)
                break
            # Beam alignment over each continuing example's chunks.
            n_chunks = max(len(plan.chunks_of[ex]) for ex in going)
            grid = torch.zeros(bsz, n_chunks, dtype=torch.long)  # chunk row per (example, c)
            grid_mask = torch.zeros(bsz, n_chunks, dtype=torch.bool)
            for ex in going:
                rows = plan.chunks_of[ex]
                grid[ex, : len(rows)] = torch.tensor(rows)
                grid_mask[ex, : len(rows)] = True
            grid, grid_mask = grid.to(device), grid_mask.to(device)
            c_scores = out.scores[grid]  # (B, C, K)
            c_valid = out.valid[grid] & grid_mask[..., None]  # (B, C, K)
            picks, slot_valid = align(
                alignment, c_scores, c_valid, grid_mask, seeds, level, beams
            )  # (B, K, C), (B, K)
            if repick is not None:
                picks, slot_valid = repick(level, picks, slot_valid)
            rows_bkc = grid[:, None, :].expand(-1, beams, -1)  # (B, K, C)
            nodes = roots[rows_bkc, picks]  # (B, K, C, D)
            node_scores = out.scores[rows_bkc, picks] * grid_mask[:, None, :]  # (B, K, C)
            beam_valid = slot_valid
            if recorder.enabled:
                recorder.end_level(
                    level,
                    out,
                    c_scores=c_scores,
                    c_valid=c_valid,
                    picks=picks,
                    slot_valid=slot_valid,
                    grid_mask=grid_mask,
                )
            running = {ex: len(plan.chunks_of[ex]) for ex in going}
            level += 1
        order = torch.cat(final_rows)
        inv = torch.empty_like(order)
        inv[order] = torch.arange(order.numel(), device=device)
        roots = torch.cat(final_roots)[inv]  # (B, K, D)
        scores = torch.cat(final_scores)[inv]  # (B, K)
        valid = torch.cat(final_valid)[inv]  # (B, K)
        return roots, scores, valid, depth
