"""RIR-EBT-GRC: Recursion in Recursion on ListOps (Ray Chowdhury & Caragea, NeurIPS 2023).

Public API (see ``shared/CONTRACT.md``): :func:`load_pretrained`, ``rir_core.listops.parse`` /
``evaluate``, ``model.predict`` and ``model.trace``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_pretrained"]


def load_pretrained(device: str = "cpu") -> Any:
    """The shipped ListOps model (``pretrained/rir_ebt_grc/``), in eval mode."""
    from rir_core.pretrained import load_pretrained as _load

    return _load(device)
