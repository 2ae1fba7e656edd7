"""The shipped ListOps model: ``pretrained/rir_ebt_grc/`` at the repository root."""

from __future__ import annotations

from pathlib import Path

import torch

from rir_core.checkpoint import SIDECAR_FILE, WEIGHTS_FILE, CheckpointInfo, load_checkpoint

#: Where the shipped checkpoint lives (a checkpoint directory, see :mod:`rir_core.checkpoint`).
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained" / "rir_ebt_grc"


def pretrained_available() -> bool:
    """Whether the shipped checkpoint is present (both of its files)."""
    return (PRETRAINED_DIR / WEIGHTS_FILE).is_file() and (PRETRAINED_DIR / SIDECAR_FILE).is_file()


def load_pretrained_with_info(device: str | torch.device = "cpu"):
    """``(model, info)`` of the shipped checkpoint; see :func:`load_pretrained`."""
    if not pretrained_available():
        raise FileNotFoundError(
            f"the pretrained model is not there yet: expected a checkpoint directory at "
            f"{PRETRAINED_DIR} (train one with `python -m rir_core.train` and copy its best/ "
            f"folder there)."
        )
    model, info = load_checkpoint(PRETRAINED_DIR, device=device)
    return model, info


def load_pretrained(device: str | torch.device = "cpu") -> torch.nn.Module:
    """The shipped RIR-EBT-GRC ListOps model, in eval mode on ``device``.

    Raises:
        FileNotFoundError: the checkpoint has not been shipped yet.
        CheckpointError: the shipped checkpoint is damaged.
    """
    return load_pretrained_with_info(device)[0]


__all__ = [
    "PRETRAINED_DIR",
    "CheckpointInfo",
    "load_pretrained",
    "load_pretrained_with_info",
    "pretrained_available",
]
