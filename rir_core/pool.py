"""A node pool for the inner recursion: every node vector is written once and read by index.

A beam's row of nodes is a row of integer pointers into the pool, so splicing a merge into
``N x K`` rows moves integers, not ``D``-dimensional vectors: a step reads the few vectors it
needs (children and neighbours) and writes the K new parents. Without this, every step copies the
whole ``(N, K, L, D)`` beam state forward and scatters a gradient of that size backward, which
makes a chunk of width L cost O(L^2 D) in memory traffic.

Autograd through in-place writes is arranged with two small functions that share the pool's
gradient buffer. Each write returns a scalar "token" that the next reads and writes consume, so
the backward pass processes a write only after every later read (which accumulated its rows'
gradients into the buffer) — the ordering autograd's topological sort guarantees.

The token lives with the caller, never on the pool: the autograd graph holds the pool, so a pool
that held the graph's tokens would make a reference cycle, and every batch's pool (and graph)
would wait for Python's cycle collector instead of being freed at once.
"""

from __future__ import annotations

import torch


class NodePool:
    """Preallocated ``(R, D)`` storage plus, during backward, a gradient buffer of the same size."""

    def __init__(self, rows: int, d: int, like: torch.Tensor) -> None:
        self.data = like.new_empty(rows, d)
        self.grad: torch.Tensor | None = None
        self.tracking = torch.is_grad_enabled()

    def grad_buffer(self) -> torch.Tensor:
        if self.grad is None:
            self.grad = torch.zeros_like(self.data)
        return self.grad

    def write(
        self, rows: torch.Tensor, x: torch.Tensor, token: torch.Tensor | None
    ) -> torch.Tensor | None:
        """``pool[rows] = x`` with ``rows (R,)``, ``x (R, D)``; returns the new token.

        ``token`` is the previous write's token (None before the first write or without
        autograd); pass the returned one to every later read and write.
        """
        if self.tracking and x.requires_grad:
            return _PoolWrite.apply(x, token if token is not None else x.new_zeros(()), self, rows)
        self.data.index_copy_(0, rows, x.detach().to(self.data.dtype))
        return token

    def write_block(
        self, start: int, x: torch.Tensor, token: torch.Tensor | None
    ) -> torch.Tensor | None:
        """``pool[start : start + R] = x`` with ``x (R, D)``: :meth:`write` to consecutive rows.

        Without autograd this is a plain copy into a slice, no index tensor involved.
        """
        if self.tracking and x.requires_grad:
            rows = torch.arange(start, start + x.shape[0], device=x.device)
            return self.write(rows, x, token)
        self.data[start : start + x.shape[0]].copy_(x.detach())
        return token

    def read(self, rows: torch.Tensor, token: torch.Tensor | None) -> torch.Tensor:
        """``pool[rows]`` as a new tensor ``(*rows.shape, D)``."""
        flat = rows.reshape(-1)
        if self.tracking and token is not None:
            out = _PoolRead.apply(token, self, flat)
        else:
            out = self.data.index_select(0, flat)
        return out.view(*rows.shape, self.data.shape[1])


class _PoolWrite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, token, pool: NodePool, rows):  # noqa: ANN001
        pool.data.index_copy_(0, rows, x.to(pool.data.dtype))
        ctx.pool = pool
        ctx.save_for_backward(rows)
        ctx.x_dtype = x.dtype
        return token.new_zeros(())

    @staticmethod
    def backward(ctx, grad_token):  # noqa: ANN001
        (rows,) = ctx.saved_tensors
        grad_x = ctx.pool.grad_buffer().index_select(0, rows).to(ctx.x_dtype)
        return grad_x, torch.zeros_like(grad_token), None, None


class _PoolRead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, token, pool: NodePool, rows):  # noqa: ANN001
        ctx.pool = pool
        ctx.save_for_backward(rows)
        return pool.data.index_select(0, rows)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: ANN001
        (rows,) = ctx.saved_tensors
        ctx.pool.grad_buffer().index_add_(0, rows, grad_out.to(ctx.pool.data.dtype))
        return grad_out.new_zeros(()), None, None
