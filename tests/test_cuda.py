"""The same model on CUDA and on CPU: same logits, same traces. Skipped (visibly) without a GPU."""

from __future__ import annotations

import copy

import pytest
import torch

from rir_core.config import Alignment, ModelConfig
from rir_core.generate import Recipe, generate
from rir_core.model import build_model
from rir_core.reference import reference_forward

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device: CUDA tests need a GPU"
    ),
]

MODEL_TYPES = ["rir_ebt_grc", "ebt_grc", "bt_grc", "bbt_grc"]


def tiny_model(model_type: str, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(
        model_type=model_type,
        hidden_size=32,
        beam_size=3,
        chunk_width=5,
        s4d_state_size=16,
        dropout=0.0,
        scorer_slice=16,
        scorer_hidden=16,
    )
    model = build_model(config)
    with torch.no_grad():  # sharper scorer: beams differ clearly, fewer near-ties
        for name, p in model.named_parameters():
            if "scorer" in name and p.dim() == 2:
                p.mul_(3.0)
    return model.eval()


def texts() -> list[str]:
    return [generate(Recipe(n, n), 1, n)[0].text for n in (4, 9, 17, 60, 200)]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_same_logits_on_cuda_and_cpu(model_type: str, dtype: torch.dtype) -> None:
    cpu = tiny_model(model_type).to(dtype)
    gpu = copy.deepcopy(cpu).cuda()
    ids, mask, lengths = cpu.encode_texts(texts())
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float64 else {"rtol": 1e-3, "atol": 1e-4}
    for alignment in Alignment:
        want = cpu(ids, mask, 3, lengths=lengths, alignment=alignment)
        got = gpu(ids.cuda(), mask.cuda(), 3, lengths=lengths, alignment=alignment)
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), want, **tol)


def test_cuda_matches_reference() -> None:
    gpu = tiny_model("rir_ebt_grc").double().cuda()
    for text in texts()[2:]:
        ids, mask, lengths = gpu.encode_texts([text])
        _, out = gpu.forward_with_details(ids, mask, 1, lengths=lengths)
        ref = reference_forward(gpu, text.split(), seed=1)
        with torch.no_grad():
            got = gpu.head(out.pooled)[0]
        torch.testing.assert_close(got, ref["logits"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_type", ["rir_ebt_grc", "bbt_grc"])
def test_trace_on_cuda(model_type: str) -> None:
    cpu = tiny_model(model_type).double()
    gpu = copy.deepcopy(cpu).cuda()
    for text in texts():
        want = cpu.trace(text, seed=2).to_dict()
        got = gpu.trace(text, seed=2).to_dict()
        assert got["prediction"] == want["prediction"]
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
        assert [b["tree"] for b in got["final_beams"]] == [b["tree"] for b in want["final_beams"]]
        assert got["depth"] == want["depth"]


def test_amp_on_cuda() -> None:
    gpu = tiny_model("rir_ebt_grc").cuda()
    ids, mask, lengths = gpu.encode_texts(texts())
    fp32 = gpu(ids, mask, 0, lengths=lengths)
    bf16 = gpu(ids, mask, 0, lengths=lengths, amp=True)
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    torch.testing.assert_close(bf16, fp32, rtol=0.1, atol=0.1)
