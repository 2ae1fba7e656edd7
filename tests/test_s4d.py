"""The S4D layer (SPEC 5): FFT path == recurrent path (outputs and gradients), padding handling."""

from __future__ import annotations

import pytest
import torch

from rir_core.s4d import BiS4D, S4DKernel, reverse_padded

LENGTHS = [1, 2, 7, 16, 33]


def _kernel(seed: int = 0, **kwargs) -> S4DKernel:
    torch.manual_seed(seed)
    return S4DKernel(channels=6, state_size=8, **kwargs).double()


def _grads(module: torch.nn.Module, u: torch.Tensor, fn, cotangent: torch.Tensor):
    """Output of ``fn(u)`` and the gradients of <output, cotangent> w.r.t. u and parameters."""
    module.zero_grad()
    u = u.detach().clone().requires_grad_(True)
    y = fn(u)
    (y * cotangent).sum().backward()
    params = {name: p.grad.clone() for name, p in module.named_parameters()}
    return y.detach(), u.grad, params


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("dt", [(1e-3, 1e-1), (0.1, 1.0)], ids=["paper-dt", "large-dt"])
def test_fft_matches_recurrent_outputs_and_gradients(length: int, dt: tuple) -> None:
    kernel = _kernel(length, dt_min=dt[0], dt_max=dt[1])
    gen = torch.Generator().manual_seed(length)
    u = torch.randn(3, 6, length, generator=gen, dtype=torch.float64)  # (B, H, L)
    cot = torch.randn(3, 6, length, generator=gen, dtype=torch.float64)
    y_fft, gu_fft, gp_fft = _grads(kernel, u, kernel.forward, cot)
    y_rec, gu_rec, gp_rec = _grads(kernel, u, kernel.forward_recurrent, cot)
    torch.testing.assert_close(y_fft, y_rec, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(gu_fft, gu_rec, rtol=1e-9, atol=1e-10)
    assert gp_fft.keys() == gp_rec.keys() == {"log_dt", "log_a_real", "a_imag", "b", "c", "d"}
    for name in gp_fft:
        torch.testing.assert_close(gp_fft[name], gp_rec[name], rtol=1e-8, atol=1e-9, msg=name)


def test_fft_is_causal_and_not_circular() -> None:
    """A later input never changes an earlier output (a circular convolution would)."""
    kernel = _kernel()
    u = torch.randn(1, 6, 16, dtype=torch.float64)
    v = u.clone()
    v[..., 10:] += 5.0
    with torch.no_grad():
        torch.testing.assert_close(kernel(u)[..., :10], kernel(v)[..., :10])


def test_kernel_is_the_impulse_response() -> None:
    """Feeding a unit impulse returns the kernel (plus the skip term D at step 0)."""
    kernel = _kernel()
    impulse = torch.zeros(1, 6, 9, dtype=torch.float64)
    impulse[..., 0] = 1.0
    with torch.no_grad():
        want = kernel.kernel(9).clone()
        want[:, 0] += kernel.d
        torch.testing.assert_close(kernel.forward_recurrent(impulse)[0], want)


# ------------------------------------------------------------------------------------------
# reverse_padded


def test_reverse_padded_is_its_own_inverse_and_keeps_padding() -> None:
    x = torch.arange(2 * 5 * 3, dtype=torch.float64).view(2, 5, 3)  # (B, L, C)
    lengths = torch.tensor([3, 5])
    r = reverse_padded(x, lengths)
    assert torch.equal(r[0, :3], x[0, [2, 1, 0]])
    assert torch.equal(r[0, 3:], x[0, 3:])  # padding in place
    assert torch.equal(r[1], x[1].flip(0))
    assert torch.equal(reverse_padded(r, lengths), x)
    for n in range(1, 6):  # every length, including 1
        lens = torch.tensor([n, 5])
        assert torch.equal(reverse_padded(reverse_padded(x, lens), lens), x)
        assert torch.equal(reverse_padded(x, lens)[0, n:], x[0, n:])


# ------------------------------------------------------------------------------------------
# BiS4D


def _bis4d() -> BiS4D:
    torch.manual_seed(0)
    return BiS4D(hidden_size=4, state_size=8, dropout=0.0).double().eval()


@pytest.mark.parametrize("recurrent", [False, True], ids=["fft", "recurrent"])
def test_bis4d_padding_invariance(recurrent: bool) -> None:
    """Real positions of an example alone == the same example inside a padded batch."""
    layer = _bis4d()
    gen = torch.Generator().manual_seed(1)
    lengths = [1, 2, 7, 16]
    x = torch.randn(len(lengths), 16, 4, generator=gen, dtype=torch.float64)  # (B, L, D)
    mask = torch.arange(16)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)
    x = x.masked_fill(~mask[..., None], 123.0)  # junk in the padding must not leak
    with torch.no_grad():
        together = layer(x, mask, recurrent=recurrent)
        for i, n in enumerate(lengths):
            alone = layer(x[i : i + 1, :n], mask[i : i + 1, :n], recurrent=recurrent)
            torch.testing.assert_close(alone[0], together[i, :n], rtol=1e-10, atol=1e-10)


def test_bis4d_fft_matches_recurrent() -> None:
    layer = _bis4d()
    x = torch.randn(2, 11, 4, dtype=torch.float64)
    mask = torch.arange(11)[None, :] < torch.tensor([11, 6])[:, None]
    with torch.no_grad():
        torch.testing.assert_close(layer(x, mask), layer(x, mask, recurrent=True))


def test_bis4d_is_bidirectional() -> None:
    """A real position sees tokens on both sides (and never the padding)."""
    layer = _bis4d()
    x = torch.randn(1, 9, 4, dtype=torch.float64)
    mask = torch.arange(9)[None, :] < 7
    with torch.no_grad():
        base = layer(x, mask)
        for j, expect_change in ((0, True), (6, True), (8, False)):
            y = x.clone()
            y[0, j] += 1.0
            changed = layer(y, mask)[0, 3] - base[0, 3]
            assert bool(changed.abs().max() > 1e-8) == expect_change, j


@pytest.mark.parametrize(
    ("slice_elements", "slices"),
    [(1, [1] * 5), (160, [2, 2, 1]), (1 << 19, [5])],
    ids=["one-by-one", "two-by-two", "whole"],
)
def test_bis4d_without_autograd_runs_in_slices_with_the_same_result(
    slice_elements: int, slices: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without autograd the block runs on batch slices (bounded FFT buffers): same outputs."""
    layer = _bis4d()
    x = torch.randn(5, 10, 4, dtype=torch.float64)
    mask = torch.arange(10)[None, :] < torch.tensor([10, 3, 7, 1, 9])[:, None]
    expected = layer(x, mask).detach()  # autograd on: one call over the whole batch
    calls = []
    inner = layer._forward
    monkeypatch.setattr(layer, "_forward", lambda *a: calls.append(a[0].shape[0]) or inner(*a))
    monkeypatch.setattr(BiS4D, "slice_elements", slice_elements)
    with torch.inference_mode():
        got = layer(x, mask)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert calls == slices  # 2 x D x L = 80 elements per example


def test_kernel_spectrum_cache_follows_the_parameters() -> None:
    """Without autograd the spectrum is cached per length, and any change of a parameter, even
    through ``.data`` (which autograd's version counter does not see), drops it."""
    kernel = _kernel()
    with torch.no_grad():
        first = kernel.kernel_spectrum(12)
        assert kernel.kernel_spectrum(12) is first  # cached
        assert kernel.kernel_spectrum(13) is not first
        kernel.log_dt.data.mul_(0.5)  # what some optimizers do between evaluations
        changed = kernel.kernel_spectrum(12)
    fresh = torch.fft.rfft(kernel.kernel(12), n=24).detach()  # autograd on: never cached
    assert not torch.allclose(changed, first)
    torch.testing.assert_close(changed, fresh, rtol=1e-12, atol=1e-12)
    with torch.inference_mode():  # cached tensors are normal tensors, usable outside the mode
        cached = kernel.kernel_spectrum(12)
    assert not cached.is_inference()
