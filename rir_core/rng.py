"""Counter-based random streams: reproducible, batch-independent draws on any device.

Every stochastic choice of the model (Gumbel noise for training-time beam search, the beam
alignment draws) is a pure function of an example's seed and the coordinates of the draw
(purpose, level, chunk, step, beam, position). So an example's draws do not depend on its batch
neighbours or on the batch's padding, a trace reproduces the batched prediction exactly, and the
draws need no host synchronisation (everything is integer tensor arithmetic on the model's device).

Per-example seeds come from an explicit ``torch.Generator`` (training) or from the user's seed
(``predict``/``trace``): see :func:`seeds_from_generator`.
"""

from __future__ import annotations

import torch

_MASK32 = 0xFFFFFFFF

# Purposes: separate streams for separate kinds of draws.
GUMBEL = 1
ALIGN = 2


def _mix(x: torch.Tensor | int) -> torch.Tensor | int:
    """A 32-bit integer finaliser (xorshift-multiply), on int64 tensors holding 32-bit values.

    Products stay below 2**63, so nothing overflows on any device. The same arithmetic runs on
    a Python int, for coordinates that live on the host.
    """
    x = x & _MASK32
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & _MASK32
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & _MASK32
    return x ^ (x >> 16)


def hash_coords(seed: torch.Tensor, *coords: torch.Tensor | int) -> torch.Tensor:
    """Hash a seed with any number of integer coordinates (broadcast together) to 32 bits."""
    h = _mix(seed.to(torch.int64) ^ 0x9E3779B9)
    h = _mix(h ^ _mix((seed.to(torch.int64) >> 32) + 0x7F4A7C15))
    return extend(h, *coords)


def coord_key(c: torch.Tensor | int) -> torch.Tensor | int:
    """The mixed form of one coordinate, which :func:`extend` folds into a hash.

    A loop can compute it once for coordinates that do not change (beam and position indices).
    A Python int (a step, a level) is mixed on the host, so no scalar is copied to the device.
    """
    if isinstance(c, torch.Tensor):
        return _mix(c.to(torch.int64) + 0x632BE5AB)
    return _mix(int(c) + 0x632BE5AB)


def extend(h: torch.Tensor, *coords: torch.Tensor | int) -> torch.Tensor:
    """Continue a hash: ``extend(hash_coords(seed, *a), *b) == hash_coords(seed, *a, *b)``.

    So a loop hashes the coordinates it shares once, outside the loop (see ``inner.py``).
    """
    for c in coords:
        h = extend_with_key(h, coord_key(c))
    return h


def extend_with_key(h: torch.Tensor, key: torch.Tensor | int) -> torch.Tensor:
    """:func:`extend` by one coordinate given as its :func:`coord_key`."""
    return _mix(h ^ key)


def uniform_from_hash(h: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Uniform draws in the open interval (0, 1) from 32-bit hashes."""
    # 24 high-quality bits, shifted off 0 and 1.
    return ((h >> 8).to(dtype) + 0.5) / float(1 << 24)


def gumbel_from_hash(h: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(u))`` from 32-bit hashes."""
    return -torch.log(-torch.log(uniform_from_hash(h, dtype)))


def uniform(seed: torch.Tensor, *coords: torch.Tensor | int, dtype=torch.float32) -> torch.Tensor:
    """Uniform draws in the open interval (0, 1), one per broadcast coordinate."""
    return uniform_from_hash(hash_coords(seed, *coords), dtype)


def gumbel(seed: torch.Tensor, *coords: torch.Tensor | int, dtype=torch.float32) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(u))``."""
    return gumbel_from_hash(hash_coords(seed, *coords), dtype)


def seeds_from_generator(batch: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """Per-example seeds ``(B,)`` drawn from an explicit (CPU) generator."""
    if generator is None:
        return torch.zeros(batch, dtype=torch.int64, device=device)
    seeds = torch.randint(0, 2**62, (batch,), generator=generator, dtype=torch.int64)
    return seeds.to(device)
