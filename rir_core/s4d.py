"""Pre-chunk bidirectional S4D layer (SPEC section 5; Gu et al. 2022, "On the Parameterization
and Initialization of Diagonal State Space Models").

The kernel generator (:class:`S4DKernel`) is kept apart from the layer that applies it
(:class:`BiS4D`). Names follow the S4D paper: ``H`` channels, ``N`` state size (``N/2`` complex
modes, the other half being their conjugates), ``log_dt`` the learnable step, ``A`` the diagonal
state matrix, ``B``/``C`` the input/output projections, ``D`` the skip term.

Layout: inputs and outputs are ``(B, L, D)`` with padding on the right; the SSM runs over
``H = 2D`` channels (the sequence and its length-aware reversal).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rir_core.cells import FastDropout


class S4DKernel(nn.Module):
    """Diagonal SSM with S4D-Inv initialisation and bilinear discretisation.

    ``A_n = -1/2 + i (N/pi) (N/(2n+1) - 1)``, ``B = 1`` (learnable), ``C ~ CN(0, 1)``,
    ``dt = exp(log_dt)`` with ``log_dt ~ U[log dt_min, log dt_max]``.
    """

    def __init__(
        self, channels: int, state_size: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1
    ) -> None:
        super().__init__()
        h, n2 = channels, state_size // 2
        self.channels, self.modes = h, n2
        log_dt = torch.rand(h) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)  # (H,)
        n = torch.arange(n2, dtype=torch.float32)
        a_imag = (state_size / math.pi) * (state_size / (2 * n + 1) - 1)  # S4D-Inv
        self.log_a_real = nn.Parameter(torch.full((h, n2), math.log(0.5)))  # (H, N/2)
        self.a_imag = nn.Parameter(a_imag.repeat(h, 1))  # (H, N/2)
        self.b = nn.Parameter(torch.view_as_real(torch.ones(h, n2, dtype=torch.cfloat)))
        c = torch.randn(h, n2, dtype=torch.cfloat)  # complex normal, unit variance
        self.c = nn.Parameter(torch.view_as_real(c))  # (H, N/2, 2)
        self.d = nn.Parameter(torch.randn(h))  # skip term (H,)

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bilinear discretisation: ``dA = (1 + dt A/2)/(1 - dt A/2)``, ``dB = dt B/(1 - dt A/2)``.

        Returns ``dA (H, N/2)``, ``dB (H, N/2)`` and ``C (H, N/2)``, complex, in float64-free
        complex64 (or complex128 if the parameters are double).
        """
        dt = torch.exp(self.log_dt)[:, None]  # (H, 1)
        a = torch.complex(-torch.exp(self.log_a_real), self.a_imag)  # (H, N/2)
        b = torch.view_as_complex(self.b)
        c = torch.view_as_complex(self.c)
        denom = 1 - dt * a / 2
        return (1 + dt * a / 2) / denom, dt * b / denom, c

    def kernel(self, length: int) -> torch.Tensor:
        """The convolution kernel ``K[l] = 2 Re(sum_n C_n dB_n dA_n^l)``, ``(H, L)``.

        Powers are split as ``dA^(a*S + b) = dA^(a*S) * dA^b`` with ``S ~ sqrt(L)``, so the sum
        over modes is a small batched matrix product per channel and no ``(H, N/2, L)`` tensor of
        powers is ever built.
        """
        da, db, c = self.discrete()
        log_da = torch.log(da)  # (H, N/2)
        step = max(1, math.isqrt(max(length - 1, 0)) + 1)  # S
        blocks = -(-length // step)  # ceil(L / S)
        real = da.real.dtype
        outer = torch.arange(blocks, device=da.device, dtype=real) * step  # (A,)
        inner = torch.arange(step, device=da.device, dtype=real)  # (S,)
        big = torch.exp(log_da[..., None] * outer)  # (H, N/2, A)
        small = torch.exp(log_da[..., None] * inner)  # (H, N/2, S)
        weighted = (c * db)[..., None] * big  # (H, N/2, A)
        k = torch.einsum("hna,hns->has", weighted, small).real  # (H, A, S)
        return 2 * k.reshape(k.shape[0], -1)[:, :length]  # (H, L)

    def kernel_spectrum(self, length: int) -> torch.Tensor:
        """The kernel's FFT for inputs of ``length`` positions. ``(H, L+1)`` complex.

        On CPU without autograd it is cached per length (up to 8 lengths) for as long as the
        parameters keep their values (compared by value, so any update, in place or not, is
        seen): it depends on the parameters only, and its complex powers cost as much as the
        rest of a one-input forward pass of 1,000 tokens. Not on CUDA, where the comparison
        would be a host synchronisation and the powers are cheap.
        """
        if torch.is_grad_enabled() or self.log_dt.device.type != "cpu":
            return torch.fft.rfft(self.kernel(length), n=2 * length)
        params = [p.detach() for p in self.parameters()]
        cache = getattr(self, "_spectrum_cache", None)  # ([parameter values], {length: spectrum})
        if cache is None or not all(
            a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(cache[0], params, strict=True)
        ):
            with torch.inference_mode(False):  # normal tensors, usable in and out of this mode
                cache = ([p.clone() for p in params], {})
            self._spectrum_cache = cache  # one assignment: safe for concurrent app sessions
        spectrum = cache[1].get(length)
        if spectrum is None:
            with torch.inference_mode(False), torch.no_grad():
                spectrum = torch.fft.rfft(self.kernel(length), n=2 * length)
            if len(cache[1]) >= 8:
                cache[1].clear()
            cache[1][length] = spectrum
        return spectrum

    def forward(self, u: torch.Tensor, k_f: torch.Tensor | None = None) -> torch.Tensor:
        """Causal SSM by FFT convolution of length 2L (not circular). ``(B, H, L) -> (B, H, L)``.

        ``k_f``: :meth:`kernel_spectrum` for this length, when the caller already has it.
        """
        length = u.shape[-1]
        if k_f is None:
            k_f = self.kernel_spectrum(length)  # (H, L+1)
        u_f = torch.fft.rfft(u, n=2 * length)  # (B, H, L+1)
        u_f = u_f.mul_(k_f) if not torch.is_grad_enabled() else u_f * k_f
        y = torch.fft.irfft(u_f, n=2 * length)[..., :length]  # (B, H, L)
        return y + u * self.d[:, None]

    def forward_recurrent(self, u: torch.Tensor) -> torch.Tensor:
        """The same map, step by step: ``x_t = dA x_{t-1} + dB u_t``, ``y_t = 2Re(C x_t) + D u_t``.

        The slow, readable oracle for :meth:`forward`. ``(B, H, L) -> (B, H, L)``.
        """
        da, db, c = self.discrete()
        x = torch.zeros(u.shape[0], *da.shape, dtype=da.dtype, device=u.device)  # (B, H, N/2)
        ys = []
        for t in range(u.shape[-1]):
            x = da * x + db * u[..., t, None]
            ys.append(2 * (c * x).sum(-1).real + self.d * u[..., t])
        return torch.stack(ys, dim=-1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's real part, padding stays on the right. ``(B, L, C)``.

    Position ``i < len`` takes ``len - 1 - i``; padding positions are left unchanged. It is its
    own inverse.
    """
    length = x.shape[1]
    pos = torch.arange(length, device=x.device)[None, :]  # (1, L)
    src = torch.where(pos < lengths[:, None], lengths[:, None] - 1 - pos, pos)  # (B, L)
    return x.gather(1, src[..., None].expand_as(x))


class BiS4D(nn.Module):
    """Bidirectional S4D block: ``x + GLU(Linear(dropout(GELU(S4D([x; rev(x)])))))``, no norm.

    Args: ``x (B, L, D)``, ``mask (B, L)`` True at real tokens. Returns ``(B, L, D)``.
    """

    def __init__(
        self,
        hidden_size: int,
        state_size: int = 64,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        d = hidden_size
        self.kernel = S4DKernel(2 * d, state_size, dt_min, dt_max)
        self.dropout = FastDropout(dropout)
        self.out = nn.Linear(2 * d, 2 * d)  # then GLU back to D

    #: Without autograd, the block runs on slices of the batch of at most this many
    #: ``(channel, position)`` elements (2D x L per example): the FFT buffers of a whole batch
    #: of long inputs (16 x 1,000 tokens: about 100 MiB) are never all alive at once. The result
    #: is the same: every example is computed on its own.
    slice_elements = 1 << 19

    def forward(self, x: torch.Tensor, mask: torch.Tensor, recurrent: bool = False) -> torch.Tensor:
        per_example = 2 * x.shape[-1] * x.shape[1]
        step = max(1, self.slice_elements // max(per_example, 1))
        if torch.is_grad_enabled() or x.shape[0] <= step:
            return self._forward(x, mask, recurrent)
        k_f = None if recurrent else self.kernel.kernel_spectrum(x.shape[1])  # once, not per slice
        return torch.cat(
            [
                self._forward(x[i : i + step], mask[i : i + step], recurrent, k_f)
                for i in range(0, x.shape[0], step)
            ]
        )

    def _forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        recurrent: bool,
        k_f: torch.Tensor | None = None,
    ) -> torch.Tensor:
        lengths = mask.sum(1)  # (B,)
        x0 = x * mask[..., None]  # padding zeroed before the convolution
        u = torch.cat([x0, reverse_padded(x0, lengths)], dim=-1).transpose(1, 2)  # (B, 2D, L)
        y = self.kernel.forward_recurrent(u) if recurrent else self.kernel(u, k_f)
        y = y.transpose(1, 2)  # (B, L, 2D)
        d = x.shape[-1]
        y = torch.cat([y[..., :d], reverse_padded(y[..., d:], lengths)], dim=-1)  # un-reverse
        y = self.dropout(F.gelu(y))
        y = F.glu(self.out(y), dim=-1)  # (B, L, D)
        return x + y
