"""Tiny random models shared by the core tests (fast on 2 cores, chunking with short inputs)."""

from __future__ import annotations

import torch

from rir_core.config import ModelConfig
from rir_core.model import ListOpsModel, build_model

W = 5  # chunk width: chunking starts at 2n >= 3W, i.e. n >= 8
K = 3  # beam size


def tiny_config(model_type: str = "rir_ebt_grc", **overrides) -> ModelConfig:
    """D 16, K 3, W 5, a small S4D state, no dropout."""
    fields = dict(
        model_type=model_type,
        hidden_size=16,
        beam_size=K,
        chunk_width=W,
        s4d_state_size=8,
        dropout=0.0,
        cell_expansion=2,
        scorer_slice=8,
        scorer_hidden=8,
    )
    fields.update(overrides)
    return ModelConfig(**fields)


def tiny_model(
    model_type: str = "rir_ebt_grc", seed: int = 0, double: bool = True, **overrides
) -> ListOpsModel:
    """An eval-mode tiny model; the scorer is scaled up so that beams differ clearly (fewer
    near-ties between candidates)."""
    torch.manual_seed(seed)
    model = build_model(tiny_config(model_type, **overrides))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "scorer" in name and p.dim() == 2:
                p.mul_(3.0)
    return (model.double() if double else model).eval()


def seeded_small_model():
    """A small RIR-EBT-GRC (D 16, K 3) with seed-0 weights, in eval mode, leaving the global
    RNG as it was: the alignment tests' shared model."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model(
            hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8, beam_size=3
        ).eval()
