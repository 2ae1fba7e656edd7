"""A model-agnostic training loop: length-bucketed batches, dev selection, exact resume, DDP.

The :class:`Trainer` knows nothing of trees or beams. It needs a module called as
``model(ids (B, L), mask (B, L), seeds (B,), lengths=[...], amp=bool) -> logits (B, Y)``
(any :class:`~rir_core.model.ListOpsModel`, possibly wrapped in DistributedDataParallel), an
optimizer, a ReduceLROnPlateau scheduler and lists of :class:`~rir_core.data.Example`. It reports
through callbacks (:class:`Callbacks`) and writes two checkpoints into ``config.checkpoint_dir``:

* ``best/`` - the weights with the best dev accuracy so far (model selection, SPEC 7);
* ``last/`` - the latest weights plus the complete training state, after every dev evaluation
  and when the run ends: ``--resume`` continues from it exactly.

The loop, in numbered steps:

1. Each epoch's batches come from ``bucket_batches`` with an RNG seeded by ``(seed, epoch)``, so
   the data order is a pure function of the seed and the position ``(epoch, batch)`` is all a
   resume needs.
2. A step draws one seed per example of the global batch from the trainer's own
   ``torch.Generator`` (the model's Gumbel noise), runs forward/backward, clips the gradient norm
   and steps the optimizer. Under DDP every rank builds the same global batch and takes every
   ``world``-th example; the loss is scaled so that DDP's gradient average equals the gradient of
   the global-batch mean, i.e. the same update as one process with the whole batch.
3. Every ``eval_every`` steps (or at every epoch end when 0) the dev accuracy is measured (eval
   mode, fixed seed), the plateau scheduler steps on it, ``best/`` is saved on improvement, and
   early stopping counts evaluations without improvement.
4. Stop requests (Ctrl-C, SIGTERM, the app's stop button, ``max_minutes``) only set a flag: the
   current step finishes, ``last/`` is saved with the training state, and :meth:`Trainer.fit`
   returns. A non-finite loss or gradient stops before the optimizer applies it and saves nothing,
   so the last good checkpoint stays the latest.

Exact resume: ``last/`` holds the optimizer state (Adam moments, Ranger's Lookahead slow weights),
the scheduler, the step, epoch and batch position, the early-stopping counters, the trainer's seed
generator and the global torch / numpy / python RNG states (dropout), per rank. On CPU, N steps
straight and N/2 + resume + N/2 give bit-identical weights (tests/test_train.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from rir_core.checkpoint import CheckpointError, save_checkpoint
from rir_core.config import ConfigError
from rir_core.data import Example, bucket_batches, encode_examples, mixed_bucket_batches
from rir_core.evaluate import evaluate_examples

OPTIMIZERS = ("ranger", "ranger_authors", "adamw")
BATCHING = ("sorted", "buckets")
SELECT_ON = ("dev", "groups")
CHUNK_RULES = ("example", "batch")
STATE_VERSION = 1
GROUPS = ("unchunked", "chunked", "long")


def length_group(n_tokens: int, chunk_width: int | None, longest_trained: int) -> str:
    """Which length group an input of ``n_tokens`` falls in, for the composition signal.

    ``unchunked``: the outer recursion runs it as one chunk (fewer than 1.5 W tokens, SPEC 3, or
    a model without chunks: ``chunk_width`` None); ``chunked``: cut into chunks, at most as long
    as the longest training input; ``long``: longer than any training input.
    """
    if n_tokens > longest_trained:
        return "long"
    if chunk_width is None or n_tokens < 1.5 * chunk_width:
        return "unchunked"
    return "chunked"


def group_score(groups: dict[str, dict[str, Any]]) -> float:
    """The mean accuracy over the groups that hold examples (0.0 when none does)."""
    present = [g["accuracy"] for g in groups.values() if g["n"]]
    return sum(present) / len(present) if present else 0.0


@dataclass(frozen=True)
class TrainConfig:
    """How to train (SPEC 7 defaults); every field can be overridden from the command line."""

    batch_size: int = 128  # global batch (split across ranks under DDP)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    optimizer: str = "ranger"  # "ranger" (RAdam + Lookahead) or "adamw"
    epochs: int = 100
    clip: float = 1.0  # max gradient norm; 0 disables clipping
    patience: int = 4  # early stopping: dev evaluations without improvement
    plateau_patience: int = 2  # ReduceLROnPlateau(mode="max") on dev accuracy
    plateau_factor: float = 0.5
    eval_every: int = 0  # steps between dev evaluations; 0 = at the end of every epoch
    eval_batch_size: int = 128
    eval_seed: int = 0  # seed of the model's draws during dev evaluation
    checkpoint_dir: str | None = None  # None: no checkpoints are written
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda (or cuda:N)
    amp: bool = False  # bf16 autocast (CUDA)
    max_steps: int | None = None  # stop after this many optimizer steps in total
    max_minutes: float | None = None  # stop after this many minutes of this invocation
    # Chunk-width augmentation: each step runs RIR with a chunk width drawn from this list
    # (empty: the model's own W). No parameter depends on W, so a model trained on a mix still
    # runs at any W; small widths make short training inputs span several outer levels.
    chunk_widths: tuple[int, ...] = ()
    init_from: str | None = None  # checkpoint whose weights start the run (fine-tuning)
    # Model selection and the LR schedule: "dev" is the dev accuracy (the paper's); "groups" is
    # the mean of the dev accuracies of the length groups present (unchunked, chunked, long; see
    # `length_group`), which unchunked inputs alone cannot satisfy.
    select_on: str = "dev"
    # How a training batch is chunked: "example" (each row by its own length, SPEC 3) or
    # "batch" (by the batch's longest row, as the authors' code does, SPEC 7.1: short tails).
    chunk_rule: str = "example"
    # "sorted": batches of similar length from one global sort; "buckets": the authors' 640-row
    # buckets sorted and cut into 5 batches (SPEC 7.1), so batches mix lengths.
    batching: str = "sorted"
    probe_every: int = 1  # evaluations between runs of the length probe (when one is given)

    def __post_init__(self) -> None:
        positive = {
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "eval_batch_size": self.eval_batch_size,
        }
        for name, value in positive.items():
            _check_int(name, value, 1)
        if self.select_on not in SELECT_ON:
            raise ConfigError(
                f"select_on must be one of {', '.join(SELECT_ON)}, not {self.select_on!r}."
            )
        _check_int("probe_every", self.probe_every, 1)
        if self.batching not in BATCHING:
            raise ConfigError(
                f"batching must be one of {', '.join(BATCHING)}, not {self.batching!r}."
            )
        if self.chunk_rule not in CHUNK_RULES:
            raise ConfigError(
                f"chunk_rule must be one of {', '.join(CHUNK_RULES)}, not {self.chunk_rule!r}."
            )
        for name in ("patience", "plateau_patience", "eval_every", "seed", "eval_seed"):
            _check_int(name, getattr(self, name), 0)
        if self.max_steps is not None:
            _check_int("max_steps", self.max_steps, 0)
        for name in ("lr", "weight_decay", "clip", "plateau_factor"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(f"{name} must be a non-negative number, not {value!r}.")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, not {self.lr}.")
        if not 0 < self.plateau_factor < 1:
            raise ConfigError(f"plateau_factor must be in (0, 1), not {self.plateau_factor}.")
        if self.max_minutes is not None and (
            isinstance(self.max_minutes, bool)
            or not isinstance(self.max_minutes, (int, float))
            or not self.max_minutes > 0
        ):
            raise ConfigError(f"max_minutes must be a positive number, not {self.max_minutes!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}."
            )
        if isinstance(self.chunk_widths, (list, tuple)):
            object.__setattr__(self, "chunk_widths", tuple(self.chunk_widths))
        else:
            raise ConfigError(
                f"chunk_widths must be a list of chunk widths, not {self.chunk_widths!r}."
            )
        for w in self.chunk_widths:
            if isinstance(w, bool) or not isinstance(w, int) or w < 2:
                raise ConfigError(f"every chunk width must be an integer of at least 2, not {w!r}.")
        if self.init_from is not None and not (
            isinstance(self.init_from, str) and self.init_from.strip()
        ):
            raise ConfigError(f"init_from must be a checkpoint path, not {self.init_from!r}.")
        if not isinstance(self.amp, bool):
            raise ConfigError(f"amp must be true or false, not {self.amp!r}.")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise ConfigError(f"device must be auto, cpu or cuda, not {self.device!r}.")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from JSON; unknown keys are an error."""
        if not isinstance(d, dict):
            raise ConfigError(f"a training config must be a JSON object, not {type(d).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training config field(s): {', '.join(unknown)}.")
        try:
            return cls(**d)
        except TypeError as err:
            raise ConfigError(str(err)) from None


def _check_int(name: str, value: Any, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, not {value!r}.")
    if value < lo:
        raise ConfigError(f"{name} must be at least {lo}, not {value}.")


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Ranger (RAdam + Lookahead, from ``pytorch_optimizer``; SPEC 7) or AdamW.

    ``ranger``: the library's defaults (beta1 0.95, eps 1e-5, Lookahead k 6 / alpha 0.5,
    gradient centralization on), as the shipped model was trained. ``ranger_authors``: the
    authors' settings (SPEC 7.1): betas (0.9, 0.999), eps 1e-8, Lookahead k 5 / alpha 0.8, no
    gradient centralization, and the S4D kernel's parameters in their own group at
    lr min(1e-3, lr). Ranger keeps its Lookahead slow weights in ``optimizer.state``
    (``slow_buffer``), so its ``state_dict`` round-trips for exact resume (tested).

    Both Rangers take ``degenerated_to_sgd=True``, as the authors' does: while RAdam's variance
    estimate is not yet rectified (the first 5 steps at beta2 0.999) they take momentum-SGD
    steps. With the library's default (False), ``pytorch_optimizer`` 4.1.0 applies a step size
    of -1 there and moves every parameter uphill for those steps (tested).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    if config.optimizer == "ranger":
        from pytorch_optimizer import Ranger

        return Ranger(
            params, lr=config.lr, weight_decay=config.weight_decay, degenerated_to_sgd=True
        )
    if config.optimizer == "ranger_authors":
        from pytorch_optimizer import Ranger

        kernel = [p for n, p in named if ".kernel." in n or n.startswith("kernel.")]
        rest = [p for n, p in named if not (".kernel." in n or n.startswith("kernel."))]
        groups = [{"params": rest}]
        if kernel:
            groups.append({"params": kernel, "lr": min(1e-3, config.lr)})
        return Ranger(
            groups,
            lr=config.lr,
            weight_decay=config.weight_decay,
            betas=(0.9, 0.999),
            eps=1e-8,
            k=5,
            alpha=0.8,
            use_gc=False,
            degenerated_to_sgd=True,
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """ReduceLROnPlateau on dev accuracy (mode max), SPEC 7."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.plateau_factor, patience=config.plateau_patience
    )


@dataclass
class Callbacks:
    """Hooks the trainer calls on rank 0 (every one optional).

    Attributes:
        on_step: after every optimizer step, with the step metrics (``step``, ``epoch``,
            ``loss``, ``accuracy``, ``lr``, ``grad_norm``, ``seq_per_s``, ``elapsed_s``,
            ``eta_s``, ``batch``, ``tokens``).
        on_eval: after every dev evaluation (``step``, ``epoch``, ``dev_accuracy``, ``dev_n``,
            ``dev_groups`` (accuracy and n per length group), ``train_groups`` (training
            accuracy per length group since the previous evaluation, dropout and noise on),
            ``score`` (what selection uses, see ``TrainConfig.select_on``),
            ``best_dev_accuracy`` (the best score so far), ``improved``, ``bad_evals``, ``lr``,
            ``elapsed_s``, and ``probe`` (``split``, ``accuracy``, ``n``) when the length
            probe ran).
        on_checkpoint: after a checkpoint is written, with its path.
        on_end: once, with the :class:`TrainResult`.
        should_stop: polled every step; True asks the trainer to stop cleanly (the app's button).
    """

    on_step: Callable[[dict[str, Any]], None] | None = None
    on_eval: Callable[[dict[str, Any]], None] | None = None
    on_checkpoint: Callable[[Path], None] | None = None
    on_end: Callable[[TrainResult], None] | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass
class TrainResult:
    """How a run ended.

    ``status`` is one of ``completed`` (all epochs), ``early_stopped``, ``max_steps``,
    ``max_minutes``, ``interrupted`` (a stop request) or ``non_finite`` (nothing saved).
    """

    status: str
    message: str
    step: int
    epoch: float
    best_dev_accuracy: float | None
    best_path: Path | None
    last_path: Path | None
    elapsed_s: float
    model: nn.Module | None = dataclasses.field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "step": self.step,
            "epoch": self.epoch,
            "best_dev_accuracy": self.best_dev_accuracy,
            "best_path": str(self.best_path) if self.best_path else None,
            "last_path": str(self.last_path) if self.last_path else None,
            "elapsed_s": self.elapsed_s,
        }


def data_fingerprint(examples: Sequence[Example]) -> str:
    """A short hash of a data set (resume refuses different training data)."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(f"{ex.label}\t{ex.text}\n".encode())
    return h.hexdigest()[:16]


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Trains one model; see the module docstring for the loop and what a resume restores."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
        train_data: Sequence[Example],
        dev_data: Sequence[Example],
        config: TrainConfig,
        callbacks: Callbacks | None = None,
        metadata: dict[str, Any] | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
        probe_data: Sequence[Example] = (),
        probe_name: str = "probe",
    ) -> None:
        """
        Args:
            model: the model, on its device (possibly DDP-wrapped).
            optimizer: built over the model's parameters (:func:`build_optimizer`).
            scheduler: :func:`build_scheduler`; stepped with the dev accuracy.
            train_data: training examples (non-empty).
            dev_data: dev examples (may be empty: then no selection, no early stopping).
            config: the training config.
            callbacks: hooks (rank 0 only).
            metadata: stored in every checkpoint (recipes, preset, notes), extended with
                ``step``, ``epoch`` and ``metrics``.
            loss_fn: ``(logits (B, Y), labels (B,)) -> mean loss``.
            probe_data: a small set of inputs longer than training (e.g. 100 of len_200_300),
                evaluated every ``probe_every`` evaluations and logged; selection ignores it.
            probe_name: how the logs name the probe (its split).
        """
        if not train_data:
            raise ValueError("the training set is empty.")
        self.model = model
        self.module: nn.Module = getattr(model, "module", model)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_data = list(train_data)
        self.dev_data = list(dev_data)
        self.config = config
        self.callbacks = callbacks or Callbacks()
        self.metadata = dict(metadata or {})
        self.loss_fn = loss_fn
        self.rank, self.world = _world()
        self.device = next(self.module.parameters()).device
        self.generator = torch.Generator().manual_seed(config.seed)  # per-example seeds
        self._lengths = [len(ex) for ex in self.train_data]
        self.probe_data = list(probe_data)
        self.probe_name = probe_name
        self._longest_trained = max(self._lengths)
        # Training accuracy per length group since the last evaluation: (correct, n) per group.
        # Not part of the resume state: after a resume it counts from the resume.
        self._train_groups = torch.zeros(len(GROUPS), 2)
        self._fingerprint = data_fingerprint(self.train_data)
        self._epoch_cache: tuple[int, list[list[int]]] | None = None
        # Position and counters (all part of the resume state).
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_dev_accuracy: float | None = None
        self.bad_evals = 0
        self.evals = 0
        self.elapsed_before = 0.0  # wall time of earlier invocations of this run
        self._stop_requested = False
        self._stop_reason = "interrupted"
        self._saved_step = -1
        self.best_path: Path | None = None
        self.last_path: Path | None = None
        ckpt = config.checkpoint_dir
        self.out_dir = Path(ckpt) if ckpt else None

    # ------------------------------------------------------------------------------- control
    def request_stop(self, reason: str = "interrupted") -> None:
        """Ask the loop to stop after the current step (safe from a signal handler)."""
        self._stop_requested = True
        self._stop_reason = reason

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Step 1: the global batches of ``epoch`` (indices into the training set)."""
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            rng = random.Random(f"rir-train-order:{self.config.seed}:{epoch}")
            if self.config.batching == "buckets":
                batches = mixed_bucket_batches(self._lengths, self.config.batch_size, rng)
            else:
                batches = bucket_batches(self._lengths, self.config.batch_size, rng)
            if self.world > 1:  # every rank needs at least one example of every batch
                batches = [b for b in batches if len(b) >= self.world]
            self._epoch_cache = (epoch, batches)
        return self._epoch_cache[1]

    def step_chunk_width(self, step: int) -> int | None:
        """The chunk width of training step ``step`` (None: the model's own).

        A pure function of the seed and the step, so every rank draws the same width and a
        resumed run draws what the uninterrupted one would have.
        """
        widths = self.config.chunk_widths
        if not widths:
            return None
        return random.Random(f"rir-train-width:{self.config.seed}:{step}").choice(widths)

    def planned_steps(self) -> int:
        """Steps until the last epoch ends or ``max_steps`` (early stopping may end sooner)."""
        total = len(self.epoch_batches(self.epoch)) * self.config.epochs
        return min(total, self.config.max_steps) if self.config.max_steps is not None else total

    # --------------------------------------------------------------------------- resume state
    def _rng_state(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
        }
        return state

    def state_dict(self) -> dict[str, Any]:
        """The complete training state (a collective under DDP: every rank must call it)."""
        rng_states: list[Any] = [self._rng_state()]
        if self.world > 1:
            gathered: list[Any] = [None] * self.world
            local = {
                k: (v.numpy().tolist() if isinstance(v, torch.Tensor) else v)
                for k, v in rng_states[0].items()
            }
            dist.all_gather_object(gathered, local)
            rng_states = [
                {
                    k: (
                        torch.tensor(v, dtype=torch.uint8)
                        if k in ("torch", "cuda") and v is not None
                        else v
                    )
                    for k, v in g.items()
                }
                for g in gathered
            ]
        return {
            "version": STATE_VERSION,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_dev_accuracy": self.best_dev_accuracy,
            "bad_evals": self.bad_evals,
            "evals": self.evals,
            "elapsed_s": self.elapsed_before + self._session_elapsed(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "rng": rng_states,
            "world_size": self.world,
            "train_config": self.config.to_dict(),
            "data": {"n": len(self.train_data), "fingerprint": self._fingerprint},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after the model weights are loaded).

        Raises:
            CheckpointError: malformed state, or different training data.
        """
        try:
            if state.get("version") != STATE_VERSION:
                raise CheckpointError(
                    f"the training state has version {state.get('version')!r}, "
                    f"expected {STATE_VERSION}."
                )
            data = state["data"]
            if data["n"] != len(self.train_data) or data["fingerprint"] != self._fingerprint:
                raise CheckpointError(
                    f"the training data differ from the saved run's ({data['n']} examples, "
                    f"fingerprint {data['fingerprint']}), so it cannot be resumed exactly."
                )
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.generator.set_state(state["generator"])
            rngs = state["rng"]
            mine = rngs[self.rank % len(rngs)]
            torch.set_rng_state(mine["torch"])
            name, keys, *rest = mine["numpy"]
            np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
            random.setstate(mine["python"])
            if mine.get("cuda") is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device)
            self.step = int(state["step"])
            self.epoch = int(state["epoch"])
            self.batch_in_epoch = int(state["batch_in_epoch"])
            best = state["best_dev_accuracy"]
            self.best_dev_accuracy = None if best is None else float(best)
            self.bad_evals = int(state["bad_evals"])
            self.evals = int(state["evals"])
            self.elapsed_before = float(state["elapsed_s"])
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as err:
            raise CheckpointError(f"the training state is malformed ({err}).") from None
        self._saved_step = self.step
        if self.out_dir is not None:
            best_dir = self.out_dir / "best"
            self.best_path = best_dir if best_dir.exists() else None
            self.last_path = self.out_dir / "last"

    # --------------------------------------------------------------------------------- saving
    def _meta(self, dev: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = dict(self.metadata)
        meta.update(step=self.step, epoch=self._epoch_progress(), seed=self.config.seed)
        metrics = dict(meta.get("metrics", {}))
        if dev is not None:
            metrics["dev"] = {"accuracy": dev["accuracy"], "n": dev["n"]}
            if "groups" in dev:
                metrics["dev"]["groups"] = dev["groups"]
        meta["metrics"] = metrics
        return meta

    def _ranks_in_sync(self) -> bool:
        """Under DDP: do all ranks hold the same weights? (a cheap checksum comparison)"""
        if self.world == 1:
            return True
        with torch.no_grad():
            flat = torch.cat([p.detach().double().flatten() for p in self.module.parameters()])
            pos = torch.arange(flat.numel(), device=flat.device, dtype=torch.float64)
            sums = torch.stack([flat.sum(), (flat * flat).sum(), (flat * torch.sin(pos)).sum()])
            gathered = [torch.zeros_like(sums) for _ in range(self.world)]
            dist.all_gather(gathered, sums)
        return all(torch.equal(gathered[0], g) for g in gathered[1:])

    def _save_last(self, dev: dict[str, Any] | None = None) -> None:
        """``last/`` with the training state (a collective under DDP; rank 0 writes)."""
        if self.out_dir is None or self._saved_step == self.step:
            return
        state = self.state_dict()
        in_sync = self._ranks_in_sync()
        if self.is_main:
            meta = self._meta(dev)
            meta["ranks_in_sync"] = in_sync
            if not in_sync:
                warnings.warn("DDP ranks hold different weights", RuntimeWarning, stacklevel=2)
            path = save_checkpoint(self.out_dir / "last", self.module, meta, resume_state=state)
            self.last_path = path
            if self.callbacks.on_checkpoint:
                self.callbacks.on_checkpoint(path)
        self._saved_step = self.step

    def _save_best(self, dev: dict[str, Any]) -> None:
        if self.out_dir is None or not self.is_main:
            return
        path = save_checkpoint(self.out_dir / "best", self.module, self._meta(dev))
        self.best_path = path
        if self.callbacks.on_checkpoint:
            self.callbacks.on_checkpoint(path)

    # ------------------------------------------------------------------------------- the loop
    def _session_elapsed(self) -> float:
        return time.monotonic() - self._t0 if hasattr(self, "_t0") else 0.0

    def _epoch_progress(self) -> float:
        n = len(self.epoch_batches(self.epoch)) or 1
        return round(self.epoch + self.batch_in_epoch / n, 4)

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _group_index(self, n_tokens: int, chunk_width: int | None) -> int:
        """Index into ``GROUPS`` of an input, at ``chunk_width`` (None: the model's own W)."""
        cfg = getattr(self.module, "config", None)
        chunks = getattr(cfg, "model_type", "rir_ebt_grc") == "rir_ebt_grc"
        width = chunk_width if chunk_width is not None else getattr(cfg, "chunk_width", None)
        return GROUPS.index(
            length_group(n_tokens, width if chunks else None, self._longest_trained)
        )

    def _train_step(self, batch: list[int]) -> dict[str, Any]:
        """Step 2: one optimizer step on a global batch; returns the (global) step metrics."""
        cfg = self.config
        self.module.train()
        seeds = torch.randint(
            0, 2**62, (len(batch),), generator=self.generator, dtype=torch.int64
        )  # (B,) one seed per example of the global batch
        share = batch[self.rank :: self.world]
        examples = [self.train_data[i] for i in share]
        width = self.step_chunk_width(self.step)
        ids, mask, labels = encode_examples(examples)  # (b, L), (b, L), (b,)
        ids, mask, labels = ids.to(self.device), mask.to(self.device), labels.to(self.device)
        logits = self.model(
            ids,
            mask,
            seeds[self.rank :: self.world].to(self.device),
            lengths=[len(ex) for ex in examples],
            amp=cfg.amp,
            **({"chunk_width": width} if width is not None else {}),
            batch_chunk_rule=cfg.chunk_rule == "batch",
        )  # (b, Y)
        local_loss = self.loss_fn(logits, labels)
        # DDP averages gradients over ranks; weighting each rank's mean by its share makes the
        # result the gradient of the global-batch mean (shares may differ by one example).
        scaled = local_loss * (len(share) * self.world / len(batch))
        self.optimizer.zero_grad(set_to_none=True)
        scaled.backward()
        params = [p for p in self.module.parameters() if p.grad is not None]
        max_norm = cfg.clip if cfg.clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        stop = self._stop_requested or (
            self.callbacks.should_stop is not None
            and self.is_main
            and bool(self.callbacks.should_stop())
        )
        over_time = (
            cfg.max_minutes is not None and self._session_elapsed() >= cfg.max_minutes * 60.0
        )
        hit = logits.detach().argmax(-1) == labels  # (b,)
        group = torch.tensor(
            [self._group_index(len(ex), width) for ex in examples], device=self.device
        )  # (b,) index into GROUPS
        onehot = F.one_hot(group, len(GROUPS)).float()  # (b, 3)
        group_counts = torch.stack([hit.float() @ onehot, onehot.sum(0)], -1)  # (3, 2)
        stats = torch.cat(
            [
                torch.stack(
                    [
                        local_loss.detach().float() * len(share),
                        hit.sum().float(),
                        torch.tensor(float(len(share)), device=self.device),
                        torch.tensor(float(stop), device=self.device),
                        torch.tensor(float(over_time), device=self.device),
                        grad_norm.detach().float().reshape(()),
                    ]
                ),
                group_counts.flatten(),
            ]
        ).to(self.device)
        if self.world > 1:
            dist.all_reduce(stats)
        values = stats.tolist()  # the step's one host synchronisation
        loss_sum, n_correct, n, stop_votes, time_votes, norm = values[:6]
        metrics = {
            "loss": loss_sum / n,
            "accuracy": n_correct / n,
            "grad_norm": norm / self.world,
            "batch": int(n),
            "tokens": sum(self._lengths[i] for i in batch),
        }
        if not (math.isfinite(loss_sum) and math.isfinite(norm)):
            metrics["non_finite"] = True
            return metrics
        self._train_groups += torch.tensor(values[6:]).view(len(GROUPS), 2)
        self.optimizer.step()
        if stop_votes > 0:
            self._stop_requested = True
        elif time_votes > 0:
            self._stop_requested = True
            self._stop_reason = "max_minutes"
        return metrics

    def _grouped_accuracy(self, examples: list[Example]) -> dict[str, Any]:
        """Accuracy on ``examples`` (this rank's shard of them; summed over ranks), per group."""
        shard = examples[self.rank :: self.world]
        res = (
            evaluate_examples(
                self.module,
                shard,
                seed=self.config.eval_seed,
                batch_size=self.config.eval_batch_size,
                group_of=lambda ex: GROUPS[self._group_index(len(ex), None)],
            )
            if shard
            else {"correct": 0, "n": 0, "groups": {}}
        )
        counts = [float(res["correct"]), float(res["n"])]
        for g in GROUPS:
            got = res["groups"].get(g, {"correct": 0, "n": 0})
            counts += [float(got["correct"]), float(got["n"])]
        total = torch.tensor(counts, device=self.device)
        if self.world > 1:
            dist.all_reduce(total)
        c = total.tolist()
        return {
            "accuracy": c[0] / c[1] if c[1] else 0.0,
            "n": int(c[1]),
            "groups": _groups_from_counts(c[2:]),
        }

    def _evaluate(self) -> dict[str, Any]:
        """Step 3: dev accuracy, scheduler, selection, early stopping, checkpoints."""
        cfg = self.config
        dev = self._grouped_accuracy(self.dev_data)
        n = dev["n"]
        dev["score"] = group_score(dev["groups"]) if cfg.select_on == "groups" else dev["accuracy"]
        train_groups = _groups_from_counts(self._train_groups.flatten().tolist())
        self._train_groups.zero_()
        probe = None
        if self.probe_data and self.evals % cfg.probe_every == 0:
            ran = self._grouped_accuracy(self.probe_data)
            probe = {"split": self.probe_name, "accuracy": ran["accuracy"], "n": ran["n"]}
        self.evals += 1
        improved = n > 0 and (
            self.best_dev_accuracy is None or dev["score"] > self.best_dev_accuracy
        )
        if improved:
            self.best_dev_accuracy = dev["score"]
            self.bad_evals = 0
            self._save_best(dev)
        elif n > 0:
            self.bad_evals += 1
        if n > 0:
            self.scheduler.step(dev["score"])
        self._save_last(dev)
        metrics = {
            "step": self.step,
            "epoch": self._epoch_progress(),
            "dev_accuracy": dev["accuracy"],
            "dev_n": dev["n"],
            "dev_groups": dev["groups"],
            "train_groups": train_groups,
            "score": dev["score"],
            "select_on": cfg.select_on,
            "best_dev_accuracy": self.best_dev_accuracy,
            "improved": bool(improved),
            "bad_evals": self.bad_evals,
            "lr": self._lr(),
            "elapsed_s": self.elapsed_before + self._session_elapsed(),
        }
        if probe is not None:
            metrics["probe"] = probe
        if self.is_main and self.callbacks.on_eval:
            self.callbacks.on_eval(metrics)
        return metrics

    def _early_stopped(self) -> bool:
        return bool(self.dev_data) and self.bad_evals >= self.config.patience > 0

    def fit(self) -> TrainResult:
        """Run until the epochs are done, early stopping, ``max_steps``, ``max_minutes``, a stop
        request or a non-finite loss; see :class:`TrainResult`."""
        cfg = self.config
        self._t0 = time.monotonic()
        train_time = 0.0
        session_seqs = 0
        session_steps = 0
        status = ""
        message = ""
        while not status:
            # Stops are checked only between units of (step + its evaluations), so a resumed run
            # continues exactly where a straight run would be.
            if self._early_stopped():
                status = "early_stopped"
                break
            if self.epoch >= cfg.epochs:
                status = "completed"
                break
            if cfg.max_steps is not None and self.step >= cfg.max_steps:
                status = "max_steps"
                break
            if self._stop_requested:
                status = self._stop_reason
                break
            batches = self.epoch_batches(self.epoch)
            if not batches:
                raise ValueError("the training set is smaller than the number of ranks.")
            if self.batch_in_epoch >= len(batches):
                # A checkpoint written at the very end of an epoch: the next one starts here.
                self.epoch += 1
                self.batch_in_epoch = 0
                continue
            t_step = time.monotonic()
            metrics = self._train_step(batches[self.batch_in_epoch])
            if metrics.get("non_finite"):
                status = "non_finite"
                kept = (
                    f"; the last good checkpoint is {self.last_path}"
                    if self.last_path
                    else "; no checkpoint was written before it"
                )
                message = (
                    f"training stopped at step {self.step + 1}: the loss or gradient "
                    f"became non-finite (loss {metrics['loss']}, gradient norm "
                    f"{metrics['grad_norm']}); that update was not applied and nothing "
                    f"was saved{kept}"
                )
                break
            self.step += 1
            self.batch_in_epoch += 1
            train_time += time.monotonic() - t_step
            session_seqs += metrics["batch"]
            session_steps += 1
            epoch_end = self.batch_in_epoch >= len(batches)
            elapsed = self.elapsed_before + self._session_elapsed()
            remaining = max(self.planned_steps() - self.step, 0)
            eta = remaining * self._session_elapsed() / session_steps
            if cfg.max_minutes is not None:  # the time limit may end the run first
                eta = min(eta, max(cfg.max_minutes * 60.0 - self._session_elapsed(), 0.0))
            metrics.update(
                step=self.step,
                epoch=self._epoch_progress(),
                lr=self._lr(),
                seq_per_s=session_seqs / max(train_time, 1e-9),
                elapsed_s=elapsed,
                eta_s=eta,
            )
            if self.is_main and self.callbacks.on_step:
                self.callbacks.on_step(metrics)
            if epoch_end:  # roll over first, so a checkpoint saved by the evaluation resumes right
                self.epoch += 1
                self.batch_in_epoch = 0
            if (cfg.eval_every and self.step % cfg.eval_every == 0) or (
                epoch_end and not cfg.eval_every
            ):
                self._evaluate()
        if status != "non_finite":
            self._save_last()
            message = {
                "completed": f"finished {cfg.epochs} epoch(s) at step {self.step}",
                "early_stopped": f"early stopping after {self.bad_evals} evaluations without "
                f"dev improvement, at step {self.step}",
                "max_steps": f"reached max_steps at step {self.step}",
                "max_minutes": f"reached max_minutes ({cfg.max_minutes}) at step {self.step}",
            }.get(status, f"stopped at step {self.step}")
        result = TrainResult(
            status,
            message,
            self.step,
            self._epoch_progress(),
            self.best_dev_accuracy,
            self.best_path,
            self.last_path,
            self.elapsed_before + self._session_elapsed(),
            self.module,
        )
        if self.is_main and self.callbacks.on_end:
            self.callbacks.on_end(result)
        return result


def _groups_from_counts(counts: list[float]) -> dict[str, dict[str, Any]]:
    """``[correct, n] * len(GROUPS)`` -> ``{group: {"accuracy", "n"}}`` (accuracy None if n 0)."""
    out = {}
    for i, g in enumerate(GROUPS):
        correct, n = counts[2 * i], int(counts[2 * i + 1])
        out[g] = {"accuracy": correct / n if n else None, "n": n}
    return out
