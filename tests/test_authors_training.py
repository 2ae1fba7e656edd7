"""tests/authors_training.py: the authors' training-only behaviours, switched on for a block."""

from __future__ import annotations

import pytest
import torch
from authors_training import patched, tied_dropout

from rir_core import inner, s4d
from rir_core.config import ModelConfig
from rir_core.data import encode_batch
from rir_core.generate import Recipe, generate
from rir_core.model import build_model

TEXTS = [ex.text for ex in generate(Recipe(20, 40), 6, seed=11)]


def _model(beam_size: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(
        ModelConfig(
            hidden_size=16, scorer_slice=8, scorer_hidden=8, beam_size=beam_size, chunk_width=8
        )
    )


def _train_logits(model: torch.nn.Module) -> torch.Tensor:
    ids, mask = encode_batch([t.split() for t in TEXTS])
    model.train()
    torch.manual_seed(1)  # the dropout masks
    return model(ids, mask, generator=torch.Generator().manual_seed(2))


PLAIN_FORWARD = inner.BeamSearch.forward
PLAIN_S4D = s4d.BiS4D._forward


def test_eval_is_unchanged_and_the_patches_are_undone() -> None:
    model = _model()
    model.eval()
    ids, mask = encode_batch([t.split() for t in TEXTS])
    with torch.no_grad():
        plain = model(ids, mask, seeds=0)
        with patched():
            assert inner.BeamSearch.forward is not PLAIN_FORWARD
            same = model(ids, mask, seeds=0)
    assert torch.equal(plain, same)
    assert inner.BeamSearch.forward is PLAIN_FORWARD and s4d.BiS4D._forward is PLAIN_S4D


def test_with_one_beam_the_two_stages_pick_what_one_stage_picks() -> None:
    # K 1: the first stage keeps each beam's best perturbed position, the second has one
    # candidate: the same merge as the joint top-1 over the same noise.
    model = _model(beam_size=1)
    plain = _train_logits(model)
    with patched(["two_stage"]):
        two = _train_logits(model)
    assert torch.equal(plain, two)


def test_with_a_beam_the_second_draw_changes_the_training_trees() -> None:
    model = _model(beam_size=4)
    plain = _train_logits(model)
    with patched(["two_stage"]):
        two = _train_logits(model)
        again = _train_logits(model)
    assert torch.equal(two, again)  # seeded: the second stage's draws are reproducible
    assert not torch.allclose(plain, two)


def test_the_backward_direction_s4d_gets_no_gradient() -> None:
    model = _model()
    with patched(["s4d_reverse_no_grad"]):
        _train_logits(model).sum().backward()
    d = 16
    for name, p in model.s4d.kernel.named_parameters():
        g = p.grad.reshape(p.shape[0], -1)  # (2D, ...): forward channels first
        assert g[:d].abs().sum() > 0, name
        assert torch.all(g[d:] == 0), name


def test_tied_dropout_drops_whole_channels() -> None:
    torch.manual_seed(0)
    y = torch.rand(3, 11, 40) + 0.5
    out = tied_dropout(y, 0.3, training=True)
    ratio = out / y  # (B, L, C): 0 or 1/0.7, the same along L
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio))
    assert set(torch.round(ratio * 0.7, decimals=4).unique().tolist()) == {0.0, 1.0}
    assert torch.equal(tied_dropout(y, 0.3, training=False), y)


def test_an_unknown_part_is_named() -> None:
    with pytest.raises(ValueError, match="unknown part 'tied'"), patched(["tied"]):
        pass
