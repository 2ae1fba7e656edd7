"""Typed, validated configuration of every model in the family (SPEC sections 1-5, 7).

One dataclass describes all four models; ``model_type`` picks the encoder:

* ``rir_ebt_grc`` - the paper's model: outer RIR recursion over chunks of width ``chunk_width``,
  each chunk reduced by the EBT-GRC beam search, beams carried between levels by alignment.
* ``ebt_grc`` - the inner recursion alone over the whole sequence (no chunks).
* ``bt_grc`` - the original beam tree cell: composes all pairs every step, scores the parents.
* ``bbt_grc`` - a balanced binary tree of GRC cells, no beams.

The config is stored in every checkpoint (``to_dict`` / ``from_dict``), so the file alone rebuilds
the model.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import Any

from rir_core.vocab import NUM_CLASSES, VOCAB_SIZE


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the allowed values."""


class Alignment(enum.StrEnum):
    """How the K beams of the next outer level are formed from each chunk's K beams (SPEC 4)."""

    SAMPLE = "sample"  # the paper's: slot 0 = best beams, other slots sampled from softmax(scores)
    RANK = "rank"  # ablation: slot b = beam b of every chunk
    RANDOM = "random"  # ablation: like sample, but uniform over valid beams
    KBEST = "kbest"  # ours: exactly the K highest-scoring combinations, deterministic


MODEL_TYPES = ("rir_ebt_grc", "ebt_grc", "bt_grc", "bbt_grc")
SHOWN_CHARS = 40  # longest value an error message quotes


def short_repr(value: Any, quote: bool = True) -> str:
    """A value for an error message, cut to :data:`SHOWN_CHARS` characters: a hostile config
    (a checkpoint's sidecar) cannot make the one-sentence message megabytes long."""
    try:
        text = repr(value) if quote else str(value)
    except ValueError:  # an int too long to print
        text = f"a {type(value).__name__} too long to show"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a model. Defaults are the paper's ListOps configuration."""

    model_type: str = "rir_ebt_grc"
    vocab_size: int = VOCAB_SIZE  # V
    num_classes: int = NUM_CLASSES  # Y
    hidden_size: int = 128  # D
    beam_size: int = 7  # K (the paper uses 5 for the EBT/BT baselines)
    chunk_width: int = 30  # W (k in the paper); only rir_ebt_grc chunks
    alignment: Alignment = Alignment.SAMPLE
    use_s4d: bool = True  # the pre-chunk bidirectional S4D layer (SPEC 5)
    s4d_state_size: int = 64  # N: 32 complex modes per channel
    s4d_dt_min: float = 1e-3
    s4d_dt_max: float = 1e-1
    dropout: float = 0.1
    cell_expansion: int = 4  # GRC hidden = cell_expansion * D
    scorer_slice: int = 64  # the EBT scorer reads only the first features of each child
    scorer_hidden: int = 64

    def __post_init__(self) -> None:
        # Accept plain strings for the enum (from JSON or the command line).
        if not isinstance(self.alignment, Alignment):
            try:
                object.__setattr__(self, "alignment", Alignment(str(self.alignment).lower()))
            except ValueError:
                allowed = ", ".join(a.value for a in Alignment)
                raise ConfigError(
                    f"alignment must be one of {allowed}, not {short_repr(self.alignment)}."
                ) from None
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(
                f"model_type must be one of {', '.join(MODEL_TYPES)}, "
                f"not {short_repr(self.model_type)}."
            )
        ints = {
            "vocab_size": (2, None),
            "num_classes": (2, None),
            "hidden_size": (2, 4096),
            "beam_size": (1, 64),
            "chunk_width": (2, 100_000),
            "s4d_state_size": (2, 1024),
            "cell_expansion": (1, 16),
            "scorer_slice": (1, None),
            "scorer_hidden": (1, 4096),
        }
        for name, (lo, hi) in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a whole number, not {short_repr(value)}.")
            if value < lo or (hi is not None and value > hi):
                bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
                raise ConfigError(f"{name} must be {bound}, not {short_repr(value)}.")
        if self.s4d_state_size % 2:
            raise ConfigError(
                f"s4d_state_size must be even (complex pairs), not {self.s4d_state_size}."
            )
        if self.hidden_size % 2:
            raise ConfigError(f"hidden_size must be even, not {self.hidden_size}.")
        if self.scorer_slice > self.hidden_size:
            raise ConfigError(
                f"scorer_slice ({self.scorer_slice}) cannot exceed hidden_size "
                f"({self.hidden_size})."
            )
        if not isinstance(self.use_s4d, bool):
            raise ConfigError(f"use_s4d must be true or false, not {short_repr(self.use_s4d)}.")
        for name in ("dropout", "s4d_dt_min", "s4d_dt_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, not {short_repr(value)}.")
            if not math.isfinite(value):  # s4d_dt_max = inf would pass the range check below
                raise ConfigError(f"{name} must be a finite number, not {short_repr(value)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout}.")
        if not 0.0 < self.s4d_dt_min <= self.s4d_dt_max:
            raise ConfigError("s4d_dt_min must be positive and at most s4d_dt_max.")

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["alignment"] = self.alignment.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a JSON dict; unknown keys are an error (a foreign file, not ours)."""
        if not isinstance(d, dict):
            raise ConfigError(f"a model config must be a JSON object, not {type(d).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            names = ", ".join(short_repr(k, quote=False) for k in unknown[:3])
            raise ConfigError(f"unknown model config field(s): {names}{more}.")
        return cls(**d)

    @classmethod
    def for_model(cls, model_type: str, **overrides: Any) -> ModelConfig:
        """The paper's configuration of ``model_type`` (beam 5 for the EBT/BT baselines)."""
        base: dict[str, Any] = {"model_type": model_type}
        if model_type in ("ebt_grc", "bt_grc"):
            base.update(beam_size=5, use_s4d=False)
        if model_type == "bbt_grc":
            base.update(beam_size=1, use_s4d=False)
        base.update(overrides)
        return cls(**base)
