"""The ListOps classifier around every encoder of the family (SPEC section 1).

``tokens -> embedding (B, L, D) -> [bidirectional S4D] -> leaf transform -> encoder -> pooled
root (B, D) -> head -> logits (B, Y)``. The encoder is RIR-EBT-GRC (outer + inner recursion),
EBT-GRC or BT-GRC (inner recursion over the whole sequence) or BBT-GRC (balanced tree).

Device is chosen at the edges: the model follows its inputs' device. Randomness (Gumbel noise,
alignment draws) comes from per-example seeds; see :mod:`rir_core.rng`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rir_core import rng
from rir_core.balanced import BalancedTree
from rir_core.cells import GRC, ChildScorer, FastDropout, ParentScorer
from rir_core.config import Alignment, ModelConfig
from rir_core.inner import BeamSearch
from rir_core.outer import OuterRecursion
from rir_core.s4d import BiS4D
from rir_core.vocab import PAD_ID, TOKEN_TO_ID


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Upcast half-precision tensors (autocast) to float32; float32/float64 stay as they are."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


@dataclass
class Settings:
    """Inference-time settings (no parameter depends on them): beam size, chunk width, alignment."""

    beam_size: int
    chunk_width: int | None
    alignment: Alignment
    # Training option: chunk by the batch's longest row, as the authors' code does (SPEC 7.1).
    batch_chunk_rule: bool = False


@dataclass
class EncoderOutput:
    pooled: torch.Tensor  # (B, D)
    roots: torch.Tensor  # (B, K, D)
    scores: torch.Tensor  # (B, K)
    valid: torch.Tensor  # (B, K)
    weights: torch.Tensor  # (B, K) softmax of the valid final beam scores
    depth: list[int]  # sequential merge steps performed, per example


class ListOpsModel(nn.Module):
    """A tree-recursive ListOps classifier. Build it with :func:`build_model`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        d = c.hidden_size
        self.embedding = nn.Embedding(c.vocab_size, d, padding_idx=PAD_ID)
        self.embed_dropout = FastDropout(c.dropout)
        self.s4d = (
            BiS4D(d, c.s4d_state_size, c.s4d_dt_min, c.s4d_dt_max, c.dropout) if c.use_s4d else None
        )
        self.leaf = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
        cell = GRC(d, c.cell_expansion, c.dropout)
        if c.model_type == "bbt_grc":
            self.encoder: nn.Module = BalancedTree(cell)
        else:
            child = (
                ChildScorer(c.scorer_slice, c.scorer_hidden) if c.model_type != "bt_grc" else None
            )
            parent = ParentScorer(d) if c.model_type == "bt_grc" else None
            self.encoder = OuterRecursion(BeamSearch(cell, child, parent))
        self.head = nn.Sequential(
            FastDropout(c.dropout),
            nn.Linear(d, d),
            nn.GELU(),
            FastDropout(c.dropout),
            nn.Linear(d, c.num_classes),
        )

    # ----------------------------------------------------------------------------- settings
    def settings(
        self,
        beam_size: int | None = None,
        chunk_width: int | None = None,
        alignment: Alignment | str | None = None,
    ) -> Settings:
        """The config's inference settings with optional overrides (validated)."""
        c = self.config
        k = c.beam_size if beam_size is None else int(beam_size)
        if k < 1:
            raise ValueError(f"beam size must be at least 1, not {k}.")
        w = c.chunk_width if chunk_width is None else int(chunk_width)
        if w < 2:
            raise ValueError(f"chunk width must be at least 2, not {w}.")
        try:
            a = (
                c.alignment
                if alignment is None
                else Alignment(str(getattr(alignment, "value", alignment)))
            )
        except ValueError:
            raise ValueError(
                f"alignment must be one of {', '.join(x.value for x in Alignment)}, "
                f"not {alignment!r}."
            ) from None
        if c.model_type != "rir_ebt_grc":
            w = None
        if c.model_type == "bbt_grc":
            k = 1
        return Settings(k, w, a)

    # ------------------------------------------------------------------------------ forward
    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Steps 1-3: embedding, pre-chunk S4D, leaf transform. ``(B, L) -> (B, L, D)``."""
        x = self.embed_dropout(self.embedding(ids))  # (B, L, D)
        if self.s4d is not None:
            with torch.autocast(ids.device.type, enabled=False):
                x = self.s4d(_at_least_fp32(x), mask)
        return self.leaf(x)

    def encode(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        seeds: torch.Tensor,
        settings: Settings,
        lengths: list[int] | None = None,
        recorder=None,
    ) -> EncoderOutput:
        """Steps 1-5: up to the pooled root ``(B, D)``."""
        if lengths is None:
            lengths = mask.sum(1).tolist()  # one host read per forward, outside the loops
        if min(lengths) < 1:
            raise ValueError("every example needs at least one token.")
        leaves = self.embed(ids, mask)  # (B, L, D)
        if self.config.model_type == "bbt_grc":
            len_t = torch.tensor(lengths, device=ids.device)
            root = self.encoder(leaves, len_t, max(lengths))  # (B, D)
            bsz = ids.shape[0]
            ones = torch.ones(bsz, 1, dtype=torch.bool, device=ids.device)
            from rir_core.balanced import balanced_depth

            return EncoderOutput(
                root,
                root[:, None],
                root.new_zeros(bsz, 1),
                ones,
                root.new_ones(bsz, 1),
                [balanced_depth(n) for n in lengths],
            )
        roots, scores, valid, depth = self.encoder(
            leaves,
            lengths,
            seeds,
            beams=settings.beam_size,
            width=settings.chunk_width,
            alignment=settings.alignment,
            recorder=recorder,
            batch_rule=settings.batch_chunk_rule,
        )
        # Step 5: roots weighted by softmax of the (valid) beam scores.
        weights = _at_least_fp32(scores).masked_fill(~valid, float("-inf")).softmax(-1)  # (B, K)
        pooled = (weights[..., None].to(roots.dtype) * roots).sum(1)  # (B, D)
        return EncoderOutput(pooled, roots, scores, valid, weights, depth)

    def forward(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        seeds: torch.Tensor | int | None = None,
        generator: torch.Generator | None = None,
        *,
        lengths: list[int] | None = None,
        beam_size: int | None = None,
        chunk_width: int | None = None,
        alignment: Alignment | str | None = None,
        amp: bool = False,
        recorder=None,
        batch_chunk_rule: bool = False,
    ) -> torch.Tensor:
        """Logits ``(B, Y)`` for token ids ``(B, L)`` with mask ``(B, L)`` (True at tokens).

        Randomness: ``seeds`` (an int for every example, or ``(B,)``) fixes every draw; otherwise
        per-example seeds are drawn from ``generator``; with neither, seed 0.
        ``batch_chunk_rule``: chunk by the batch's longest row (a training option, SPEC 7.1;
        RIR only). Off, each row is chunked by its own length (SPEC 3).
        """
        logits, _ = self.forward_with_details(
            ids,
            mask,
            seeds,
            generator,
            lengths=lengths,
            beam_size=beam_size,
            chunk_width=chunk_width,
            alignment=alignment,
            amp=amp,
            recorder=recorder,
            batch_chunk_rule=batch_chunk_rule,
        )
        return logits

    def forward_with_details(
        self,
        ids,
        mask,
        seeds=None,
        generator=None,
        *,
        lengths=None,
        beam_size=None,
        chunk_width=None,
        alignment=None,
        amp=False,
        recorder=None,
        batch_chunk_rule=False,
    ) -> tuple[torch.Tensor, EncoderOutput]:
        """Like :meth:`forward`, also returning the encoder's output (beams, weights, depth)."""
        bsz = ids.shape[0]
        if seeds is None:
            seeds_t = rng.seeds_from_generator(bsz, generator, ids.device)
        elif isinstance(seeds, int):
            seeds_t = torch.full((bsz,), seeds, dtype=torch.int64, device=ids.device)
        else:
            seeds_t = seeds.to(device=ids.device, dtype=torch.int64)
        settings = self.settings(beam_size, chunk_width, alignment)
        if batch_chunk_rule and settings.chunk_width is not None:
            settings = dataclasses.replace(settings, batch_chunk_rule=True)
        ctx = (
            torch.autocast(ids.device.type, dtype=torch.bfloat16)
            if amp
            else contextlib.nullcontext()
        )
        with ctx:
            out = self.encode(ids, mask, seeds_t, settings, lengths, recorder)
            logits = self.head(out.pooled)  # (B, Y)
        return _at_least_fp32(logits), out

    # ---------------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def encode_tokens(self, toks: list[list[str]]):
        """Encode canonical token lists: ids ``(B, L)``, mask ``(B, L)`` and host lengths."""
        lengths = [len(t) for t in toks]
        ids = torch.full((len(toks), max(lengths)), PAD_ID, dtype=torch.long)
        for i, t in enumerate(toks):
            ids[i, : len(t)] = torch.tensor([TOKEN_TO_ID[x] for x in t])
        ids = ids.to(self.device)
        return ids, ids != PAD_ID, lengths

    def encode_texts(self, texts: list[str], max_tokens: int = 5000):
        """Parse (validating) and encode expressions; see :meth:`encode_tokens`."""
        from rir_core.listops import checked_tokens

        return self.encode_tokens([checked_tokens(t, max_tokens=max_tokens) for t in texts])

    @torch.inference_mode()
    def predict(
        self,
        texts: list[str],
        seed: int = 0,
        batch_size: int = 64,
        max_tokens: int = 5000,
        **settings,
    ) -> list[int]:
        """Predicted values (0-9) of ListOps expressions, batched by length. Eval mode only.

        Raises ``ListOpsSyntaxError`` for a malformed expression.
        """
        if self.training:
            raise RuntimeError("call model.eval() before predict().")
        from rir_core.listops import checked_tokens

        toks = [checked_tokens(t, max_tokens=max_tokens) for t in texts]
        order = sorted(range(len(toks)), key=lambda i: len(toks[i]))
        out = [0] * len(toks)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            ids, mask, lengths = self.encode_tokens([toks[i] for i in idx])
            logits = self(ids, mask, seed, lengths=lengths, **settings)
            for i, p in zip(idx, logits.argmax(-1).tolist(), strict=True):
                out[i] = p
        return out

    def trace(
        self,
        text: str,
        seed: int = 0,
        alignment: Alignment | str | None = None,
        beam_size: int | None = None,
        chunk_width: int | None = None,
    ):
        """Everything the model computed for one expression: see :class:`rir_core.trace.Trace`."""
        from rir_core.trace import trace_model

        return trace_model(
            self, text, seed=seed, alignment=alignment, beam_size=beam_size, chunk_width=chunk_width
        )


def build_model(config: ModelConfig | dict | None = None, **overrides) -> ListOpsModel:
    """The one factory for every model of the family."""
    if config is None:
        config = ModelConfig(**overrides)
    elif isinstance(config, dict):
        config = ModelConfig.from_dict({**config, **overrides})
    elif overrides:
        config = config.replace(**overrides)
    return ListOpsModel(config)


def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the Y classes."""
    return F.cross_entropy(logits, labels)
