"""Counterfactual beam alignment: force one alignment decision, re-run only the levels above.

A researcher debugging beam alignment (SPEC section 4) asks: "had slot ``s`` of the alignment
after outer level ``l`` taken beam ``b`` of chunk ``c``, what would the model answer?" The
levels up to ``l`` do not depend on that decision, so only the outer levels above ``l`` (and
the root pooling and head, SPEC section 1 step 5-6) need to run again.

Two ways to get the answer, which must agree bit for bit (``tests/test_counterfactual.py``):

- :func:`forced_run`: the whole model, with the outer recursion's ``repick`` hook overwriting
  that one pick (the oracle);
- :class:`Rerunner`: one recorded run keeps, per aligned level, what the next level is built
  from (every chunk's K root vectors ``(C, K, D)``, their scores and validity, and the picks);
  :meth:`Rerunner.rerun` builds the next level's slots from those with the forced pick and
  resumes the outer recursion there (``OuterRecursion.forward(start=...)``).

Only eval mode and one expression at a time (batch of 1, ``B = 1``). Randomness is the model's:
the alignment draws of the levels above come from the same per-example seed, so a rerun with
the same seed and no forced change reproduces the original answer exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rir_core.outer import LevelInput


@dataclass(frozen=True)
class Force:
    """One forced alignment decision: after outer ``level``, slot ``slot`` takes beam ``beam``
    of chunk ``chunk`` (whatever the strategy chose there)."""

    level: int
    slot: int
    chunk: int
    beam: int


@dataclass
class Outcome:
    """What the model answers (one expression): the head's class probabilities ``(Y,)``, the
    prediction, and the final root beams' scores, validity and pooling weights ``(K,)``."""

    probabilities: list[float]
    prediction: int
    scores: list[float]
    valid: list[bool]
    weights: list[float]
    logits: torch.Tensor  # (Y,), float32 at least: what "exactly the same" is checked on


@dataclass
class LevelState:
    """What the alignment after one outer level saw and chose (one expression, ``N = C``).

    ``roots (C, K, D)``: each chunk's K root vectors; ``scores``/``valid`` ``(C, K)``;
    ``picks (K, C)``: the beam of every chunk in every slot; ``slot_valid (K,)``."""

    roots: torch.Tensor
    scores: torch.Tensor
    valid: torch.Tensor
    picks: torch.Tensor
    slot_valid: torch.Tensor


class StateRecorder:
    """An outer-recursion recorder that keeps the alignment inputs and picks of every level.

    It records nothing of the inner steps (see ``rir_core.trace.TraceRecorder`` for that); it
    only copies the tensors ``OuterRecursion`` hands to ``end_level``.
    """

    enabled = True

    def __init__(self) -> None:
        self.levels: dict[int, LevelState] = {}

    def begin_level(self, level, plan, init_scores, init_valid) -> None:  # noqa: ANN001
        pass

    def inner_step(self, **_) -> None:  # noqa: ANN003
        pass

    def end_level(
        self, level, out, c_scores=None, c_valid=None, picks=None, slot_valid=None, grid_mask=None
    ) -> None:  # noqa: ANN001
        if picks is None:  # the last level: no alignment follows
            return
        n_chunks = int(grid_mask[0].sum())
        self.levels[level] = LevelState(
            roots=out.nodes[:n_chunks, :, 0].clone(),  # (C, K, D): one example, chunk rows 0..C-1
            scores=out.scores[:n_chunks].clone(),  # (C, K)
            valid=out.valid[:n_chunks].clone(),  # (C, K)
            picks=picks[0, :, :n_chunks].clone(),  # (K, C)
            slot_valid=slot_valid[0].clone(),  # (K,)
        )


def _head(model, roots: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor) -> Outcome:
    """SPEC section 1, steps 5-6, as ``ListOpsModel.encode`` and ``forward_with_details`` do
    them: roots ``(1, K, D)`` weighted by the softmax of the valid beam scores, then the head."""
    up = torch.promote_types(scores.dtype, torch.float32)
    weights = scores.to(up).masked_fill(~valid, float("-inf")).softmax(-1)  # (1, K)
    pooled = (weights[..., None].to(roots.dtype) * roots).sum(1)  # (1, D)
    logits = model.head(pooled)  # (1, Y)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))[0]  # (Y,)
    probs = logits.softmax(-1).tolist()
    return Outcome(
        probabilities=probs,
        prediction=int(max(range(len(probs)), key=probs.__getitem__)),
        scores=scores[0].float().tolist(),
        valid=[bool(v) for v in valid[0].tolist()],
        weights=weights[0].float().tolist(),
        logits=logits,
    )


def _settings_and_inputs(model, text: str, seed: int, beam_size, chunk_width, alignment):
    if model.training:
        raise RuntimeError("call model.eval() before a counterfactual run.")
    if model.config.model_type != "rir_ebt_grc":
        raise ValueError("only RIR-EBT-GRC aligns beams between levels.")
    settings = model.settings(beam_size, chunk_width, alignment)
    ids, mask, lengths = model.encode_texts([text])
    seeds = torch.full((1,), int(seed), dtype=torch.int64, device=ids.device)
    return settings, ids, mask, lengths, seeds


def _forced(picks: torch.Tensor, force: Force) -> torch.Tensor:
    """``picks (K, C)`` with the one forced entry; range errors as one sentence."""
    k, c = picks.shape
    if not 0 <= force.slot < k:
        raise ValueError(f"slot {force.slot} does not exist: there are {k} slots (0-{k - 1}).")
    if not 0 <= force.chunk < c:
        raise ValueError(f"chunk {force.chunk} does not exist: there are {c} chunks (0-{c - 1}).")
    if not 0 <= force.beam < k:
        raise ValueError(f"beam {force.beam} does not exist: a chunk has {k} beams (0-{k - 1}).")
    out = picks.clone()
    out[force.slot, force.chunk] = force.beam
    return out


@torch.inference_mode()
def forced_run(
    model,
    text: str,
    force: Force | None,
    *,
    seed: int = 0,
    beam_size: int | None = None,
    chunk_width: int | None = None,
    alignment=None,
) -> Outcome:
    """The whole model on ``text`` with one alignment decision forced (None: none forced, the
    model's own answer). The oracle for :meth:`Rerunner.rerun`."""
    settings, ids, mask, lengths, seeds = _settings_and_inputs(
        model, text, seed, beam_size, chunk_width, alignment
    )
    applied: list[int] = []

    def repick(level: int, picks: torch.Tensor, slot_valid: torch.Tensor):
        if force is None or level != force.level:
            return picks, slot_valid
        applied.append(level)
        c = int(picks.shape[2])
        forced = _forced(picks[0, :, :c], force)  # (K, C)
        return forced[None], slot_valid  # (1, K, C)

    leaves = model.embed(ids, mask)  # (1, L, D)
    roots, scores, valid, _ = model.encoder(
        leaves,
        lengths,
        seeds,
        beams=settings.beam_size,
        width=settings.chunk_width,
        alignment=settings.alignment,
        repick=repick,
    )  # (1, K, D), (1, K), (1, K)
    if force is not None and not applied:
        raise ValueError(f"no alignment follows level {force.level} for this input.")
    return _head(model, roots, scores, valid)


class Rerunner:
    """One recorded run of ``text`` that can answer "what if" questions about its alignments.

    Build it with :meth:`record` (one model run, which keeps every aligned level's state);
    :meth:`rerun` then runs only the outer levels above the forced decision.
    """

    def __init__(self, model, text: str, seed: int, settings, levels: dict[int, LevelState]):
        self.model = model
        self.text = text
        self.seed = int(seed)
        self.settings = settings
        self.levels = levels

    @classmethod
    @torch.inference_mode()
    def record(
        cls,
        model,
        text: str,
        *,
        seed: int = 0,
        beam_size: int | None = None,
        chunk_width: int | None = None,
        alignment=None,
    ) -> Rerunner:
        settings, ids, mask, lengths, seeds = _settings_and_inputs(
            model, text, seed, beam_size, chunk_width, alignment
        )
        recorder = StateRecorder()
        leaves = model.embed(ids, mask)  # (1, L, D)
        model.encoder(
            leaves,
            lengths,
            seeds,
            beams=settings.beam_size,
            width=settings.chunk_width,
            alignment=settings.alignment,
            recorder=recorder,
        )
        return cls(model, text, seed, settings, recorder.levels)

    def check(self, force: Force) -> None:
        """Raise ``ValueError`` (one sentence) unless ``force`` names a real, valid choice."""
        state = self.levels.get(force.level)
        if state is None:
            have = ", ".join(map(str, sorted(self.levels))) or "none"
            raise ValueError(
                f"no alignment follows level {force.level} for this input (aligned levels: {have})."
            )
        _forced(state.picks, force)
        if not bool(state.slot_valid[force.slot]):
            raise ValueError(f"slot {force.slot} is not a valid slot at this level.")
        if not bool(state.valid[force.chunk, force.beam]):
            raise ValueError(
                f"chunk {force.chunk} has no valid beam {force.beam} (it has fewer than K beams)."
            )

    @torch.inference_mode()
    def rerun(self, force: Force | None) -> Outcome:
        """The answer with ``force`` applied, computing only the levels above ``force.level``
        (None: the original answer, resumed above the first aligned level)."""
        if not self.levels:
            raise ValueError("this input is a single chunk: there is no alignment to change.")
        level = min(self.levels) if force is None else force.level
        if force is not None:
            self.check(force)
        state = self.levels[level]
        picks = state.picks if force is None else _forced(state.picks, force)  # (K, C)
        k, c = picks.shape
        rows = torch.arange(c, device=picks.device)[None, None, :].expand(1, k, c)  # (1, K, C)
        picks = picks[None]  # (1, K, C)
        grid_mask = torch.ones(1, c, dtype=torch.bool, device=picks.device)  # (1, C)
        # Exactly what OuterRecursion.forward does after its alignment.
        nodes = state.roots[rows, picks]  # (1, K, C, D)
        node_scores = state.scores[rows, picks] * grid_mask[:, None, :]  # (1, K, C)
        start = LevelInput(level + 1, nodes, node_scores, state.slot_valid[None])
        seeds = torch.full((1,), self.seed, dtype=torch.int64, device=picks.device)
        roots, scores, valid, _ = self.model.encoder(
            nodes[:, 0],  # (1, C, D): gives B, D and the device only
            [c],
            seeds,
            beams=self.settings.beam_size,
            width=self.settings.chunk_width,
            alignment=self.settings.alignment,
            start=start,
        )
        return _head(self.model, roots, scores, valid)
