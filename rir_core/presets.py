"""Named training recipes: a model config, a training config and a data recipe each.

=========  ===========================================================================
preset     what it is for
=========  ===========================================================================
paper      SPEC 7: D 128, K 7, W 30, S4D, Ranger lr 1e-3, wd 1e-2, batch 128, up to 100
           epochs, early stopping 4, on the full 90k training split (a GPU job).
cpu        learns well within about an hour on a 2-core CPU: the paper's model and optimizer
           (D 128, K 7, W 30, S4D, Ranger lr 1e-3, batch 128), dev (500) every 250 steps, no
           early stopping, stops after 60 minutes.
classroom  the watched tree turns right after a few epochs; 20 epochs, about 5 minutes on a
           CPU: D 64, K 3, 4,000 training examples of at most 20 tokens.
=========  ===========================================================================

Every field of every part can be overridden (``get_preset(name, model={...}, train={...},
data={...})``, or the flags of ``python -m rir_core.train``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rir_core.config import ConfigError, ModelConfig
from rir_core.data import Example, read_tsv
from rir_core.trainer import TrainConfig


@dataclass(frozen=True)
class DataRecipe:
    """Which examples to train and select on.

    The training set is ``train_file`` if given, else the standard split ``train_split``; it is
    filtered to at most ``max_train_tokens`` tokens (and at least ``min_train_tokens``: a late
    curriculum on the longer inputs), then cut to its first ``train_n`` examples. Likewise for dev.
    """

    train_split: str = "train"
    dev_split: str = "dev"
    train_file: str | None = None  # a TSV file (any of the three layouts) instead of the split
    dev_file: str | None = None
    train_n: int | None = None  # keep the first N (after the token filter)
    dev_n: int | None = None
    max_train_tokens: int | None = None
    max_dev_tokens: int | None = None
    min_train_tokens: int | None = None
    # A length probe: the first `probe_n` inputs of a standard split longer than training,
    # evaluated and logged every few evaluations (selection ignores it). None: no probe.
    probe_split: str | None = None
    probe_n: int = 100

    def __post_init__(self) -> None:
        from rir_core.generate import SPLITS

        for name in ("train_split", "dev_split"):
            if getattr(self, name) not in SPLITS:
                raise ConfigError(
                    f"{name} must be one of {', '.join(SPLITS)}, not {getattr(self, name)!r}."
                )
        if self.probe_split is not None and self.probe_split not in SPLITS:
            raise ConfigError(
                f"probe_split must be one of {', '.join(SPLITS)}, not {self.probe_split!r}."
            )
        for name in (
            "train_n",
            "dev_n",
            "max_train_tokens",
            "max_dev_tokens",
            "min_train_tokens",
            "probe_n",
        ):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"{name} must be a positive whole number, not {value!r}.")
        for name in ("train_file", "dev_file"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a file path, not {value!r}.")

    def replace(self, **changes: Any) -> DataRecipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataRecipe:
        return _from_dict(cls, d, "data recipe")

    def _load(
        self,
        split: str,
        file: str | None,
        max_tokens: int | None,
        n: int | None,
        progress: bool,
        min_tokens: int | None = None,
    ) -> list[Example]:
        from rir_core.generate import load_split

        examples = read_tsv(file) if file else load_split(split, progress=progress)
        if max_tokens is not None:
            examples = [ex for ex in examples if len(ex) <= max_tokens]
        if min_tokens is not None:
            examples = [ex for ex in examples if len(ex) >= min_tokens]
        return examples if n is None else examples[:n]

    def load(self, progress: bool = False) -> tuple[list[Example], list[Example]]:
        """``(train, dev)`` examples (standard splits are generated once and cached).

        Raises:
            DataFormatError / OSError: for an unreadable ``train_file`` / ``dev_file``.
            ValueError: when the training set ends up empty.
        """
        train = self._load(
            self.train_split,
            self.train_file,
            self.max_train_tokens,
            self.train_n,
            progress,
            self.min_train_tokens,
        )
        dev = self._load(self.dev_split, self.dev_file, self.max_dev_tokens, self.dev_n, progress)
        if not train:
            raise ValueError("the training set is empty after filtering.")
        return train, dev

    def load_probe(self, progress: bool = False) -> list[Example]:
        """The length probe's examples (empty without ``probe_split``)."""
        if self.probe_split is None:
            return []
        return self._load(self.probe_split, None, None, self.probe_n, progress)


def _from_dict(cls: Any, d: Any, what: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"a {what} must be a JSON object, not {type(d).__name__}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {what} field(s): {', '.join(unknown)}.")
    try:
        return cls(**d)
    except TypeError as err:
        raise ConfigError(str(err)) from None


@dataclass(frozen=True)
class Preset:
    """A named recipe: everything :func:`rir_core.train.train` needs."""

    name: str
    description: str
    model: ModelConfig
    train: TrainConfig
    data: DataRecipe

    def override(
        self,
        model: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> Preset:
        """A copy with fields of each part replaced (validated; unknown fields are errors)."""
        parts = {
            "model": (self.model, model, "model config"),
            "train": (self.train, train, "training config"),
            "data": (self.data, data, "data recipe"),
        }
        changed: dict[str, Any] = {}
        for key, (current, changes, what) in parts.items():
            if not changes:
                changed[key] = current
                continue
            changed[key] = _from_dict(type(current), {**current.to_dict(), **changes}, what)
        return dataclasses.replace(self, **changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.name,
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "data": self.data.to_dict(),
        }


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper",
        "SPEC 7 recipe on the full training split (meant for a GPU).",
        ModelConfig(),  # D 128, K 7, W 30, S4D, dropout 0.1, scorer on 64-dim slices
        TrainConfig(
            batch_size=128,
            lr=1e-3,
            weight_decay=1e-2,
            optimizer="ranger",
            epochs=100,
            clip=1.0,
            patience=4,
            eval_every=0,
        ),
        DataRecipe(),
    ),
    "cpu": Preset(
        "cpu",
        "The paper's model and optimizer for an hour: learns ListOps on a 2-core CPU.",
        # Measured: a D 64, K 5 model (AdamW lr 2e-3 batch 64, or Ranger lr 1e-3 batch 128) sat
        # on the 60-68% plateau for its whole hour (12.7 epochs on one thread). The paper-size
        # model left it after 5-6 epochs in both of our runs (seeds 0 and 3), and 5-6 epochs
        # fit in about half an hour on two cores.
        ModelConfig(),  # D 128, K 7, W 30, S4D, dropout 0.1, scorer on 64-dim slices
        TrainConfig(
            batch_size=128,
            lr=1e-3,
            weight_decay=1e-2,
            optimizer="ranger",
            epochs=100,
            clip=1.0,
            # No early stopping: the hour ends it. The rate is halved after 12 evaluations
            # (3,000 steps, 4 epochs) without progress, which the plateau never triggered.
            patience=0,
            plateau_patience=12,
            eval_every=250,
            eval_batch_size=128,
            max_minutes=60.0,
        ),
        DataRecipe(dev_n=500),
    ),
    "classroom": Preset(
        "classroom",
        "Watch the tree turn right in a few epochs; 20 epochs, about 5 minutes on a CPU.",
        # Measured with tests/measure_classroom.py (docs/training.md): the first version (D 32,
        # 3,000 examples of <= 30 tokens, lr 3e-3, 12 epochs, early stopping) ended in about
        # 65 s with [MAX 2 9 [MIN 4 7 ] 0 ] still at 50% recall (MIN never a node); run on to
        # epoch 27 it was right at 4 evaluations of 27. This one has it right from epoch 3 on,
        # at 16 of the 18 evaluations that follow, and at the end.
        ModelConfig(
            hidden_size=64,
            scorer_slice=32,
            scorer_hidden=32,
            beam_size=3,
            chunk_width=30,
            use_s4d=True,
        ),
        TrainConfig(
            batch_size=32,
            lr=2e-3,
            weight_decay=1e-2,
            optimizer="adamw",
            epochs=20,
            clip=1.0,
            # No early stopping: dev accuracy sits on the 55-61% plateau while the trees are
            # learned, and stopping after 4 evaluations without progress ended the run at an
            # epoch where the watched tree was wrong.
            patience=0,
            eval_every=0,  # one evaluation (and one drawn tree) per epoch
            eval_batch_size=128,
            max_minutes=10.0,  # a slow laptop still gets its class back
        ),
        DataRecipe(train_n=4000, dev_n=300, max_train_tokens=20, max_dev_tokens=30),
    ),
}


def get_preset(
    name: str,
    model: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Preset:
    """The preset ``name`` with optional overrides of its model, training and data parts.

    Raises:
        ConfigError: unknown preset, unknown field or invalid value (one sentence).
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return PRESETS[name].override(model, train, data)
