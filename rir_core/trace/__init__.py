"""Exact traces: everything the batched model computed for one expression.

The model is run through :class:`TraceRecorder`, an explicit recorder passed down the outer and
inner recursion (a null recorder when tracing is off, so the normal path pays nothing). The
recorder copies what it is shown to plain Python data; it decides nothing, so the trace is what
the model computed. :class:`Trace` holds plain data; ``to_dict()`` is JSON.

Trees are nested lists over token positions: a token index, or ``[left, right]``.

This package sits below the model (``model.trace`` calls :func:`trace_model`) and imports nothing
that builds or loads one. Its command line, ``python -m rir_core.trace``, loads checkpoints and
so lives above the model, in ``rir_core/trace/__main__.py``, which nothing imports.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from rir_core.balanced import balanced_depth, balanced_tree
from rir_core.outer import LevelPlan, depth_performed, rir_bound

Tree = Any  # int | list[Tree, Tree]


def tree_span(tree: Tree) -> tuple[int, int]:
    """``[first, last)`` token span of a tree (without recursion)."""
    lo, hi, stack = math.inf, -math.inf, [tree]
    while stack:
        t = stack.pop()
        if isinstance(t, int):
            lo, hi = min(lo, t), max(hi, t)
        else:
            stack.extend(t)
    return int(lo), int(hi) + 1


def tree_spans(tree: Tree) -> list[tuple[int, int]]:
    """Spans of every internal node of a binary tree, children before parents; linear time."""
    out: list[tuple[int, int]] = []
    spans: list[tuple[int, int]] = []  # spans of finished subtrees, a stack
    stack: list[tuple[Tree, bool]] = [(tree, False)]
    while stack:
        t, expanded = stack.pop()
        if isinstance(t, int):
            spans.append((t, t + 1))
        elif expanded:
            right, left = spans.pop(), spans.pop()
            spans.append((left[0], right[1]))
            out.append(spans[-1])
        else:
            stack.append((t, True))
            stack.extend((child, False) for child in reversed(t))
    return out


def tree_leaves(tree: Tree) -> list[int]:
    """Leaves in left-to-right order."""
    out, stack = [], [tree]
    while stack:
        t = stack.pop()
        if isinstance(t, int):
            out.append(t)
        else:
            stack.extend(reversed(t))
    return out


def gold_recall(tree: Tree, gold_spans: list[list[int]]) -> float:
    """Fraction of the gold operator constituents that the binary tree has as a node span."""
    if not gold_spans:
        return 1.0
    have = set(tree_spans(tree))
    return sum(tuple(s) in have for s in gold_spans) / len(gold_spans)


@dataclass
class Trace:
    """The trace of one expression (CONTRACT "Trace"), as plain data."""

    expression: str
    tokens: list[str]
    ground_truth: int | None
    prediction: int
    probabilities: list[float]
    depth: dict[str, Any]
    levels: list[dict[str, Any]]
    final_beams: list[dict[str, Any]]
    gold_spans: list[list[int]]
    settings: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        return cls(**d)


class TraceRecorder:
    """Collects the outer levels, inner steps and alignments of ONE example (batch of 1)."""

    enabled = True

    def __init__(self, n_tokens: int, beams: int) -> None:
        self.beams = beams
        # Span of every subtree seen, by identity; the entry keeps the tree alive, so an id is
        # never reused while cached. A merged node's span is its children's spans joined.
        self._span_cache: dict[int, tuple[Tree, tuple[int, int]]] = {}
        self._span_lists: dict[int, list[int]] = {}  # keyed like _span_cache (ints: by value)
        self.node_trees: list[list[Tree]] = [list(range(n_tokens)) for _ in range(beams)]
        self.levels: list[dict[str, Any]] = []
        self.steps_run = 0
        self.final_trees: list[Tree] = []
        self._plan: LevelPlan | None = None
        # Where every merged node was built: id -> (node, level, chunk, step); the entry keeps
        # the node alive, so an id is never reused while it is recorded.
        self._built: dict[int, tuple[Tree, int, int, int]] = {}

    def _span(self, tree: Tree) -> tuple[int, int]:
        if isinstance(tree, int):
            return (tree, tree + 1)
        hit = self._span_cache.get(id(tree))
        if hit is None:
            span = (self._span(tree[0])[0], self._span(tree[-1])[1])
            self._span_cache[id(tree)] = (tree, span)
            return span
        return hit[1]

    def _span_list(self, tree: Tree) -> list[int]:
        """``[first, last)`` of ``tree`` as ONE shared list per subtree: a node sits in every
        step's beams until it is merged, and sharing its span list (the trace is read-only)
        keeps a 510-token trace at 130k Python objects instead of 204k."""
        key = tree if isinstance(tree, int) else id(tree)
        hit = self._span_lists.get(key)
        if hit is None:
            hit = self._span_lists[key] = list(self._span(tree))
        return hit

    def built_nodes(self, tree: Tree) -> list[list[int]]:
        """``[first, last, level, chunk, step]`` of every merged node of ``tree`` (pre-order):
        the outer level, chunk and merge step (1-based) at which the search built it."""
        out, stack = [], [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, int):
                continue
            first, last = self._span(node)
            hit = self._built.get(id(node))
            where = list(hit[1:]) if hit is not None and hit[0] is node else [-1, -1, -1]
            out.append([first, last, *where])
            stack.extend(reversed(node))
        return out

    def _spans(self, trees: list[Tree]) -> list[list[int]]:
        return [self._span_list(t) for t in trees]

    # -- called by OuterRecursion -----------------------------------------------------------
    def begin_level(
        self, level: int, plan: LevelPlan, init_scores: torch.Tensor, init_valid: torch.Tensor
    ) -> None:
        self._plan = plan
        scores = init_scores.detach().float().cpu().tolist()
        valid = init_valid.cpu().tolist()
        self.chunk_trees = []  # [chunk][beam] -> list of node trees
        chunks = []
        for c, (start, length) in enumerate(zip(plan.start, plan.length, strict=True)):
            self.chunk_trees.append(
                [list(self.node_trees[k][start : start + length]) for k in range(self.beams)]
            )
            first = self._span(self.node_trees[0][start])[0]
            last = self._span(self.node_trees[0][start + length - 1])[1]
            chunks.append(
                {
                    "span": [first, last],
                    "nodes": length,
                    "initial_scores": scores[c],
                    "initial_valid": valid[c],
                    "steps": [],
                }
            )
        self.levels.append(
            {
                "level": level,
                "nodes": self._spans(self.node_trees[0]),
                "chunks": [c["span"] for c in chunks],
                "chunk_details": chunks,
                "inner_steps": 0,
                "alignment": None,
            }
        )
        self._scores = scores
        self._valid = valid

    def inner_step(
        self,
        *,
        step,
        active,
        logp,
        pair_ok,
        parent,
        pos,
        scores,
        valid,
        cand_parent,
        cand_pos,
        cand_score,
        cand_ok,
        pick,
    ) -> None:
        self.steps_run += 1
        level = self.levels[-1]
        level["inner_steps"] += 1
        active = active.cpu().tolist()
        probs = logp.detach().float().exp().cpu().tolist()  # one conversion, sliced below
        n_pairs_of = pair_ok.sum(-1).cpu().tolist()
        parent, pos = parent.cpu().tolist(), pos.cpu().tolist()
        new_scores = scores.detach().float().cpu().tolist()
        new_valid = valid.cpu().tolist()
        cand_parent = cand_parent.cpu().tolist()
        cand_pos, cand_score = cand_pos.cpu().tolist(), cand_score.detach().float().cpu().tolist()
        cand_ok, pick = cand_ok.cpu().tolist(), pick.cpu().tolist()
        for c, is_active in enumerate(active):
            if not is_active:
                continue
            trees = self.chunk_trees[c]
            n_pairs = int(n_pairs_of[c])
            beams = []
            for k in range(self.beams):
                beams.append(
                    {
                        "nodes": self._spans(trees[k]),
                        "pair_probs": probs[c][k][:n_pairs],
                        "score": self._scores[c][k],
                        "valid": bool(self._valid[c][k]),
                    }
                )
            survived = set(pick[c])
            candidates = [
                {
                    "parent": cand_parent[i],
                    "position": cand_pos[c][i],
                    "score": cand_score[c][i],
                    "valid": bool(cand_ok[c][i]),
                    "survived": i in survived,
                }
                for i in range(len(cand_parent))
            ]
            chosen = []
            new_trees = []
            for k in range(self.beams):
                src, j = parent[c][k], pos[c][k]
                row = trees[src]
                if j + 1 < len(row):
                    merged = [row[j], row[j + 1]]
                    new_trees.append(row[:j] + [merged] + row[j + 2 :])
                    number = len(level["chunk_details"][c]["steps"]) + 1  # as the app shows it
                    self._built[id(merged)] = (merged, level["level"], c, number)
                else:  # a filler (invalid) beam merging past the chunk's end: the row shrinks
                    merged = row[-1]
                    new_trees.append(row[:-1])
                chosen.append(
                    {
                        "parent": src,
                        "position": j,
                        "score": new_scores[c][k],
                        "valid": bool(new_valid[c][k]),
                        "merged_span": list(self._span(merged)),
                    }
                )
            self.chunk_trees[c] = new_trees
            self._scores[c] = new_scores[c]
            self._valid[c] = new_valid[c]
            level["chunk_details"][c]["steps"].append(
                {"step": step, "beams": beams, "chosen": chosen, "candidates": candidates}
            )

    def end_level(
        self,
        level: int,
        out,
        c_scores=None,
        c_valid=None,
        picks=None,
        slot_valid=None,
        grid_mask=None,
    ) -> None:
        info = self.levels[-1]
        roots = [
            [self.chunk_trees[c][k][0] for k in range(self.beams)]
            for c in range(len(self.chunk_trees))
        ]
        final_scores = out.scores.detach().float().cpu().tolist()
        final_valid = out.valid.cpu().tolist()
        for c, detail in enumerate(info["chunk_details"]):
            detail["final_beams"] = [
                {"score": final_scores[c][k], "valid": bool(final_valid[c][k]), "tree": roots[c][k]}
                for k in range(self.beams)
            ]
        if picks is None:
            self.final_trees = roots[0]
            return
        n_chunks = len(self.chunk_trees)
        sc = c_scores[0, :n_chunks].detach().float()
        ok = c_valid[0, :n_chunks]
        probs = sc.masked_fill(~ok, float("-inf")).softmax(-1).cpu().tolist()
        picks_l = picks[0, :, :n_chunks].cpu().tolist()
        slot_ok = slot_valid[0].cpu().tolist()
        slots = []
        for s in range(self.beams):
            chosen = picks_l[s]
            slots.append(
                {
                    "picks": chosen,
                    "score": float(sum(final_scores[c][chosen[c]] for c in range(n_chunks))),
                    "valid": bool(slot_ok[s]),
                }
            )
        best = [
            max(range(self.beams), key=lambda k, c=c: (final_valid[c][k], final_scores[c][k]))
            for c in range(n_chunks)
        ]
        info["alignment"] = {
            "chunk_probs": probs,
            "chunk_scores": [final_scores[c] for c in range(n_chunks)],
            "chunk_valid": [[bool(v) for v in final_valid[c]] for c in range(n_chunks)],
            "slots": slots,
            "best_combination": best,
            "best_kept": any(sl["picks"] == best and sl["valid"] for sl in slots),
        }
        self.node_trees = [
            [roots[c][picks_l[s][c]] for c in range(n_chunks)] for s in range(self.beams)
        ]


def _gold_spans(expr) -> list[list[int]]:
    from rir_core.listops import Op, walk

    return [[node.first, node.last] for node in walk(expr) if isinstance(node, Op)]


@torch.inference_mode()
def trace_model(
    model,
    text: str,
    seed: int = 0,
    alignment=None,
    beam_size=None,
    chunk_width=None,
    max_tokens: int = 5000,
) -> Trace:
    """Run ``model`` (in eval mode) on one expression with a recorder and collect the trace."""
    from rir_core.listops import evaluate, iter_tokens, parse

    if model.training:
        raise RuntimeError("call model.eval() before trace().")
    expr = parse(text, max_tokens=max_tokens)
    toks = list(iter_tokens(expr))
    settings = model.settings(beam_size, chunk_width, alignment)
    n = len(toks)
    ids, mask, lengths = model.encode_tokens([toks])
    cfg = model.config
    recorder = None if cfg.model_type == "bbt_grc" else TraceRecorder(n, settings.beam_size)
    logits, out = model.forward_with_details(
        ids,
        mask,
        seed,
        lengths=lengths,
        beam_size=settings.beam_size,
        chunk_width=settings.chunk_width,
        alignment=settings.alignment,
        recorder=recorder,
    )
    probs = logits.softmax(-1)[0].tolist()
    width = settings.chunk_width
    if recorder is None:
        trees, levels, performed = (
            [balanced_tree(n)],
            [
                {
                    "level": 0,
                    "nodes": [[i, i + 1] for i in range(n)],
                    "chunks": [[0, n]],
                    "chunk_details": [],
                    "inner_steps": balanced_depth(n),
                    "alignment": None,
                }
            ],
            out.depth[0],
        )
    else:
        trees, levels, performed = recorder.final_trees, recorder.levels, recorder.steps_run
    weights = out.weights[0].float().tolist()
    scores = out.scores[0].float().tolist()
    valid = out.valid[0].tolist()
    gold = _gold_spans(expr)
    final_beams = [
        {
            "weight": weights[k],
            "score": scores[k],
            "valid": bool(valid[k]),
            "tree": trees[k],
            "gold_recall": gold_recall(trees[k], gold),
            # Where each merged node was built: [first, last, level, chunk, step], pre-order.
            "built": recorder.built_nodes(trees[k]) if recorder is not None else [],
        }
        for k in range(len(trees))
    ]
    return Trace(
        expression=" ".join(toks),
        tokens=toks,
        ground_truth=evaluate(expr),
        prediction=int(max(range(len(probs)), key=probs.__getitem__)),
        probabilities=probs,
        depth={
            "performed": int(performed),
            "schedule": depth_performed(n, width)
            if cfg.model_type != "bbt_grc"
            else balanced_depth(n),
            "rir_bound": rir_bound(n, width if width else cfg.chunk_width),
            "ebt": max(n - 1, 0),
            "balanced": balanced_depth(n),
        },
        levels=levels,
        final_beams=final_beams,
        gold_spans=gold,
        settings={
            "seed": seed,
            "alignment": settings.alignment.value,
            "beam_size": settings.beam_size,
            "chunk_width": width,
        },
        model={"model_type": cfg.model_type, "config": cfg.to_dict()},
    )


def summary(trace: Trace) -> str:
    """A readable text summary: levels, chunks, merges per beam, alignment picks, depth."""
    lines = [
        f"expression: {trace.expression}",
        f"prediction {trace.prediction}, ground truth {trace.ground_truth} "
        f"(p={max(trace.probabilities):.3f})",
        f"settings: {trace.settings}",
    ]
    for lv in trace.levels:
        lines.append(
            f"level {lv['level']}: {len(lv['nodes'])} nodes in {len(lv['chunks'])} "
            f"chunk(s) {lv['chunks']}, {lv['inner_steps']} inner steps"
        )
        for c, detail in enumerate(lv["chunk_details"]):
            merges = [[ch["merged_span"] for ch in st["chosen"][:1]] for st in detail["steps"]]
            flat = " ".join(f"{m[0][0]}:{m[0][1]}" for m in merges if m)
            lines.append(f"  chunk {c} {detail['span']}: beam 0 merges {flat}")
        al = lv["alignment"]
        if al:
            lines.append(
                f"  alignment picks per slot: {[s['picks'] for s in al['slots']]}; "
                f"best combination kept: {al['best_kept']}"
            )
    d = trace.depth
    lines.append(
        f"depth performed {d['performed']} (RIR bound {d['rir_bound']:.1f}, "
        f"EBT/BT {d['ebt']}, balanced {d['balanced']})"
    )
    for k, b in enumerate(trace.final_beams):
        lines.append(
            f"beam {k}: weight {b['weight']:.3f} score {b['score']:.3f} "
            f"gold recall {b['gold_recall']:.2f} tree {json.dumps(b['tree'])}"
        )
    return "\n".join(lines)
