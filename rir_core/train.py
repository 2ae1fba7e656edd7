"""Train a model from a preset, a JSON config and/or flags; resume exactly; run under torchrun.

Command line (see docs/training.md)::

    python -m rir_core.train --preset classroom
    python -m rir_core.train --preset cpu --out runs/cpu --max-minutes 60
    python -m rir_core.train --resume runs/cpu              # continues exactly where it stopped
    torchrun --nproc_per_node 8 -m rir_core.train --preset paper --device cuda

Precedence: the preset < ``--config FILE.json`` (``{"preset", "model", "train", "data"}``) <
flags. A run directory holds ``config.json`` (the resolved recipe), ``log.jsonl`` (one JSON line
per step, evaluation and checkpoint), ``best/`` and ``last/`` (see :mod:`rir_core.trainer`).

Python API (what the app's training page calls in a worker process)::

    result = train(preset="classroom", train_overrides={"epochs": 2}, callbacks=Callbacks(...))

Ctrl-C or SIGTERM: the current step finishes, ``last/`` is saved with the training state and the
command exits with status 0 ("stopped; resume with --resume DIR"). A second Ctrl-C aborts.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import random
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from rir_core.checkpoint import (
    SIDECAR_FILE,
    CheckpointError,
    checkpoint_info,
    load_checkpoint,
    load_resume_state,
)
from rir_core.config import ConfigError
from rir_core.data import DataFormatError, Example, JSONFileError, cli_error, read_json
from rir_core.model import build_model
from rir_core.presets import PRESETS, DataRecipe, Preset, get_preset
from rir_core.trainer import (
    Callbacks,
    TrainConfig,
    Trainer,
    TrainResult,
    build_optimizer,
    build_scheduler,
)

# Training fields that may change when resuming (they do not alter the updates already planned).
RESUMABLE_OVERRIDES = ("epochs", "max_steps", "max_minutes", "device", "amp", "checkpoint_dir")
# Errors that mean "bad input" (exit status 2, one sentence), not a bug.
SETUP_ERRORS = (ConfigError, CheckpointError, DataFormatError, FileNotFoundError)


def set_seed(seed: int) -> None:
    """Seed every global RNG (torch, numpy, python): model initialisation and dropout."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# Distributed set-up


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # whether we initialised the process group (and must destroy it)


def _init_distributed(device_name: str) -> _Dist:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1)."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return _Dist(dist.get_rank(), dist.get_world_size(), local, owned=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), local, owned=True)


def _resolve_device(name: str, env: _Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device cuda was asked for, but no CUDA device is available.")
        if env.world > 1:
            return torch.device("cuda", env.local_rank)
    return torch.device(name)


def _broadcast(value: Any, env: _Dist) -> Any:
    if env.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------------------------
# Recipes and run directories


def _read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = read_json(path, "config file")
    except JSONFileError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object.")
    unknown = sorted(set(data) - {"preset", "model", "train", "data"})
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown key(s) {', '.join(unknown)}; "
            "expected preset, model, train, data."
        )
    for key in ("model", "train", "data"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"config file {path}: {key} must be a JSON object.")
    return data


def _resume_dirs(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(checkpoint with training state, run directory)`` for ``--resume PATH``."""
    p = Path(path)
    if p.is_dir() and ((p / "last").exists() or any(p.glob("last.old-*"))):
        return p / "last", p
    if (p / SIDECAR_FILE).is_file() or any(p.parent.glob(f"{p.name}.old-*")):
        return p, p.parent
    raise CheckpointError(
        f"--resume {path}: no run directory (with last/) or checkpoint directory there."
    )


def _recipe_from_checkpoint(ckpt: Path) -> Preset:
    info = checkpoint_info(ckpt)
    recipe = info.metadata.get("recipe")
    if not isinstance(recipe, dict):
        raise CheckpointError(
            f"checkpoint {ckpt} does not record the recipe it was trained "
            "with, so it cannot be resumed."
        )
    try:
        name = recipe.get("preset", "custom")
        return Preset(
            str(name),
            "resumed",
            info.model_config,
            TrainConfig.from_dict(recipe["train"]),
            DataRecipe.from_dict(recipe["data"]),
        )
    except (KeyError, ConfigError) as err:
        raise CheckpointError(f"checkpoint {ckpt} has a malformed recipe ({err}).") from None


# Model-config fields that shape the search, not the weights: a fine-tune may change them (for
# example train at W 8 from a checkpoint trained at W 30), and dropout, which has no weights.
SEARCH_FIELDS = ("beam_size", "chunk_width", "alignment", "dropout")


def _init_weights(model: torch.nn.Module, path: str) -> None:
    """Start ``model`` from the weights of the checkpoint at ``path``.

    Every config field that gives the weights their shapes or meaning must match; the search
    settings in ``SEARCH_FIELDS`` may differ.
    """
    source, info = load_checkpoint(path, device="cpu")
    theirs, ours = info.model_config, model.config
    diff = [
        f"{k} {getattr(theirs, k)!r} (run: {getattr(ours, k)!r})"
        for k in vars(ours)
        if k not in SEARCH_FIELDS and getattr(theirs, k, None) != getattr(ours, k)
    ]
    if diff:
        raise ConfigError(
            f"--init-from {path}: its model differs from this run's in {', '.join(diff)}."
        )
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(source.state_dict()[name])


def resolve_recipe(
    preset: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    model_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    data_overrides: dict[str, Any] | None = None,
) -> Preset:
    """The preset (default ``cpu``), overridden by the config file, then by the overrides."""
    file_cfg = _read_config_file(config_file) if config_file else {}
    name = preset or file_cfg.get("preset") or "cpu"
    if not isinstance(name, str):
        raise ConfigError("preset must be a name.")
    recipe = get_preset(name, file_cfg.get("model"), file_cfg.get("train"), file_cfg.get("data"))
    model_overrides = dict(model_overrides or {})
    if "hidden_size" in model_overrides:  # keep the scorer at half of D unless told otherwise
        half = max(int(model_overrides["hidden_size"]) // 2, 1)
        model_overrides.setdefault("scorer_slice", half)
        model_overrides.setdefault("scorer_hidden", half)
    return recipe.override(model_overrides, train_overrides, data_overrides)


# --------------------------------------------------------------------------------------------
# Logging: JSONL lines and a tqdm bar (rank 0)


def _plain(obj: Any) -> Any:
    """Strict JSON: non-finite floats become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


class _JsonlLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, event: str, payload: dict[str, Any]) -> None:
        self.handle.write(json.dumps(_plain({"event": event, **payload})) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _chain(*fns: Callable[..., None] | None) -> Callable[..., None] | None:
    live = [f for f in fns if f is not None]
    if not live:
        return None

    def call(*args: Any) -> None:
        for f in live:
            f(*args)

    return call


# --------------------------------------------------------------------------------------------
# The API


@dataclass
class PreparedRun:
    """A run ready to start: :meth:`fit` trains, logs, and cleans up."""

    trainer: Trainer
    recipe: Preset
    out_dir: Path
    log: _JsonlLog | None
    bar: tqdm | None
    env: _Dist
    resumed_from: int | None

    def fit(self, handle_signals: bool = False) -> TrainResult:
        """Train; with ``handle_signals`` Ctrl-C / SIGTERM stop cleanly (main thread only)."""
        previous: dict[int, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, _frame: Any) -> None:
                if signum == signal.SIGINT and self.trainer._stop_requested:
                    raise KeyboardInterrupt  # a second Ctrl-C aborts at once
                self.trainer.request_stop("interrupted")
                if self.bar is not None:
                    self.bar.write(
                        f"{signal.Signals(signum).name}: finishing the current step "
                        "and saving (Ctrl-C again to abort)",
                        file=sys.stderr,
                    )

            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            result = self.trainer.fit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.bar is not None:
                self.bar.close()
        if self.log is not None:
            self.log.write("end", result.to_dict())
            self.log.close()
        if self.env.owned:
            dist.barrier()
            # The DDP wrapper's reducer holds the last reference to the gloo/nccl process group;
            # left to interpreter shutdown, its worker threads can be torn down unjoined
            # ("terminate called without an active exception", seen once under heavy load).
            # Unwrap and collect it here, while the interpreter is whole.
            self.trainer.model = getattr(self.trainer.model, "module", self.trainer.model)
            gc.collect()
            dist.destroy_process_group()
        return result


def _pct(acc: float | None) -> str:
    return "-" if acc is None else f"{100 * acc:.1f}%"


def eval_line(m: dict[str, Any]) -> str:
    """The progress line of one evaluation: dev accuracy per length group, training accuracy on
    the same groups beside it (a chunked training accuracy far above the held-out one is
    memorization), the length probe when it ran, the selection score and the learning rate.

    ``step 700: dev 93.1% | unchunked 99.5% (train 99.0%) · chunked 64.0% (train 73.2%) ·
    long 41.0% | len_200_300 45.0% of 100 | score 0.9310 (best 0.9400), lr 5.0e-04``
    """
    parts = [f"step {m['step']}: dev {_pct(m['dev_accuracy'])}"]
    dev_groups, train_groups = m.get("dev_groups") or {}, m.get("train_groups") or {}
    shown = []
    for name, held in dev_groups.items():
        trained = train_groups.get(name, {})
        if not held.get("n") and not trained.get("n"):
            continue
        beside = f" (train {_pct(trained['accuracy'])})" if trained.get("n") else ""
        shown.append(f"{name} {_pct(held.get('accuracy'))}{beside}")
    if shown:
        parts.append(" · ".join(shown))
    if "probe" in m:
        p = m["probe"]
        parts.append(f"{p['split']} {_pct(p['accuracy'])} of {p['n']}")
    best = m["best_dev_accuracy"]
    best_txt = "-" if best is None else f"{best:.4f}"
    score = m.get("score", m["dev_accuracy"])
    parts.append(f"score {score:.4f} (best {best_txt}), lr {m['lr']:.1e}")
    return " | ".join(parts)


def prepare(
    preset: str | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    model_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    data_overrides: dict[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    callbacks: Callbacks | None = None,
    log: str | os.PathLike[str] | None = None,
    progress: bool = False,
    train_examples: Sequence[Example] | None = None,
    dev_examples: Sequence[Example] | None = None,
    notes: str = "",
) -> PreparedRun:
    """Everything before the first step; raises the setup errors (see :func:`train`)."""
    env = _init_distributed((train_overrides or {}).get("device", "auto"))
    try:
        return _prepare(
            env,
            preset,
            config_file,
            model_overrides,
            train_overrides,
            data_overrides,
            out,
            resume,
            callbacks,
            log,
            progress,
            train_examples,
            dev_examples,
            notes,
        )
    except BaseException:
        if env.owned:
            dist.destroy_process_group()
        raise


def _prepare(
    env,
    preset,
    config_file,
    model_overrides,
    train_overrides,
    data_overrides,
    out,
    resume,
    callbacks,
    log,
    progress,
    train_examples,
    dev_examples,
    notes,
) -> PreparedRun:
    resume_ckpt: Path | None = None
    if resume is not None:
        resume_ckpt, run_dir = _resume_dirs(resume)
        if model_overrides or data_overrides or config_file or preset:
            raise ConfigError(
                "a resumed run keeps its saved recipe: only --epochs, --max-steps, "
                "--max-minutes, --device, --amp, --out and --log may be given."
            )
        fixed = sorted(set(train_overrides or {}) - set(RESUMABLE_OVERRIDES))
        if fixed:
            flags = ", ".join("--" + f.replace("_", "-") for f in fixed)
            raise ConfigError(
                f"{flags} cannot change when resuming (the run continues with its saved recipe)."
            )
        recipe = _recipe_from_checkpoint(resume_ckpt)
        recipe = recipe.override(train=train_overrides)
        out_dir = Path(out) if out else run_dir
    else:
        recipe = resolve_recipe(
            preset, config_file, model_overrides, train_overrides, data_overrides
        )
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path(out) if out else Path(_broadcast(f"runs/{stamp}", env))
        if (out_dir / "last").exists() or (out_dir / "best").exists():
            raise ConfigError(
                f"{out_dir} already holds a run; continue it with --resume "
                f"{out_dir} or choose another --out."
            )
    cfg = recipe.train.replace(checkpoint_dir=str(out_dir))
    recipe = recipe.override(train={"checkpoint_dir": str(out_dir)})
    device = _resolve_device(cfg.device, env)
    if cfg.amp and device.type != "cuda":
        raise ConfigError("--amp (bf16 autocast) needs a CUDA device.")
    if env.world > 1 and cfg.batch_size < env.world:
        raise ConfigError(f"batch_size {cfg.batch_size} is smaller than the {env.world} ranks.")

    if train_examples is not None:
        train_data = list(train_examples)
        dev_data = list(dev_examples or [])
        if not train_data:
            raise ConfigError("the training set is empty.")
    else:
        try:
            train_data, dev_data = recipe.data.load(progress=progress and env.rank == 0)
        except ValueError as err:
            if isinstance(err, DataFormatError):
                raise
            raise ConfigError(str(err)) from None

    probe_data = recipe.data.load_probe(progress=progress and env.rank == 0)

    set_seed(cfg.seed)
    if resume_ckpt is not None:
        model, _ = load_checkpoint(resume_ckpt, device=device)
        model.train()
    else:
        model = build_model(recipe.model).to(device)
        if cfg.init_from:
            _init_weights(model, cfg.init_from)
    if env.world > 1:
        torch.manual_seed(cfg.seed + 1_000_003 * env.rank)  # different dropout on every rank
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped: torch.nn.Module = DDP(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    else:
        wrapped = model
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    metadata = {
        "preset": recipe.name,
        "recipe": recipe.to_dict(),
        "train": cfg.to_dict(),
        "data": recipe.data.to_dict(),
        "notes": notes,
        "data_sizes": {"train": len(train_data), "dev": len(dev_data)},
        "world_size": env.world,
    }
    if train_examples is not None:
        metadata["data"] = {**metadata["data"], "custom_examples": True}

    main = env.rank == 0
    user = callbacks or Callbacks()
    jsonl = _JsonlLog(Path(log) if log else out_dir / "log.jsonl") if main else None
    bar = None
    if main and progress:
        bar = tqdm(desc=f"train {recipe.name}", unit="step", file=sys.stderr, dynamic_ncols=True)

    def bar_step(m: dict[str, Any]) -> None:
        assert bar is not None
        bar.set_postfix(
            loss=f"{m['loss']:.3f}",
            acc=f"{m['accuracy']:.3f}",
            lr=f"{m['lr']:.1e}",
            seq_s=f"{m['seq_per_s']:.1f}",
            refresh=False,
        )
        bar.update(1)

    def bar_eval(m: dict[str, Any]) -> None:
        assert bar is not None
        bar.write(eval_line(m), file=sys.stderr)

    has_log, has_bar = jsonl is not None, bar is not None
    cbs = Callbacks(
        on_step=_chain(
            (lambda m: jsonl.write("step", m)) if has_log else None,
            bar_step if has_bar else None,
            user.on_step,
        ),
        on_eval=_chain(
            (lambda m: jsonl.write("eval", m)) if has_log else None,
            bar_eval if has_bar else None,
            user.on_eval,
        ),
        on_checkpoint=_chain(
            (lambda p: jsonl.write("checkpoint", {"path": p})) if has_log else None,
            user.on_checkpoint,
        ),
        on_end=user.on_end,
        should_stop=user.should_stop,
    )
    trainer = Trainer(
        wrapped,
        optimizer,
        scheduler,
        train_data,
        dev_data,
        cfg,
        cbs,
        metadata,
        probe_data=probe_data,
        probe_name=recipe.data.probe_split or "probe",
    )
    resumed_from = None
    if resume_ckpt is not None:
        trainer.load_state_dict(load_resume_state(resume_ckpt))
        resumed_from = trainer.step
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        from rir_core.data import atomic_write_text

        atomic_write_text(out_dir / "config.json", [json.dumps(recipe.to_dict(), indent=2)])
        assert jsonl is not None
        jsonl.write(
            "start",
            {
                "recipe": recipe.to_dict(),
                "resumed_from": resumed_from,
                "device": str(device),
                "world_size": env.world,
                "train_n": len(train_data),
                "dev_n": len(dev_data),
                "torch_version": torch.__version__,
            },
        )
    if bar is not None:
        bar.reset(total=trainer.planned_steps())
        bar.update(trainer.step)
    return PreparedRun(trainer, recipe, out_dir, jsonl, bar, env, resumed_from)


def train(
    preset: str | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    model_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    data_overrides: dict[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    callbacks: Callbacks | None = None,
    log: str | os.PathLike[str] | None = None,
    progress: bool = False,
    handle_signals: bool = False,
    train_examples: Sequence[Example] | None = None,
    dev_examples: Sequence[Example] | None = None,
    notes: str = "",
) -> TrainResult:
    """Train (or resume) a model; the Python face of ``python -m rir_core.train``.

    Args:
        preset: ``paper``, ``cpu`` (default) or ``classroom`` (:mod:`rir_core.presets`).
        config_file: JSON ``{"preset", "model", "train", "data"}`` applied over the preset.
        model_overrides: :class:`~rir_core.config.ModelConfig` fields (changing ``hidden_size``
            also sets the scorer sizes to half of it unless they are given).
        train_overrides: :class:`~rir_core.trainer.TrainConfig` fields.
        data_overrides: :class:`~rir_core.presets.DataRecipe` fields.
        out: run directory (default ``runs/<timestamp>``; with ``resume``, the resumed run's).
        resume: a run directory (holding ``last/``) or a checkpoint with training state; only
            the training fields in :data:`RESUMABLE_OVERRIDES` may be overridden then.
        callbacks: :class:`~rir_core.trainer.Callbacks` (called on rank 0).
        log: the JSONL log file (default ``OUT/log.jsonl``; appended to).
        progress: tqdm bar on stderr.
        handle_signals: Ctrl-C / SIGTERM stop cleanly (only from the main thread).
        train_examples, dev_examples: use these examples instead of the data recipe (a resume
            must pass the same ones again).
        notes: free-form text stored in the checkpoints' metadata.

    Returns:
        The :class:`~rir_core.trainer.TrainResult` (its ``model`` is the trained module).

    Raises:
        ConfigError, CheckpointError, DataFormatError, FileNotFoundError: bad recipe, resume
            directory or data (one sentence each).
    """
    run = prepare(
        preset,
        config_file=config_file,
        model_overrides=model_overrides,
        train_overrides=train_overrides,
        data_overrides=data_overrides,
        out=out,
        resume=resume,
        callbacks=callbacks,
        log=log,
        progress=progress,
        train_examples=train_examples,
        dev_examples=dev_examples,
        notes=notes,
    )
    return run.fit(handle_signals=handle_signals)


# --------------------------------------------------------------------------------------------
# Command line


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 8,15,30, not {text!r}"
        ) from None


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rir_core.train",
        description="Train RIR-EBT-GRC (or a baseline) on ListOps. Precedence: preset < "
        "--config < flags. Runs under torchrun for data-parallel training.",
    )
    g = p.add_argument_group("recipe")
    g.add_argument("--preset", choices=sorted(PRESETS), help="named recipe (default cpu)")
    g.add_argument(
        "--config",
        metavar="FILE.json",
        help='JSON {"preset", "model": {...}, "train": {...}, "data": {...}}',
    )
    g.add_argument("--out", metavar="DIR", help="run directory (default runs/<timestamp>)")
    g.add_argument("--resume", metavar="DIR", help="continue a run exactly (run dir or last/)")
    g.add_argument("--log", metavar="FILE.jsonl", help="JSONL log (default OUT/log.jsonl)")
    g.add_argument("--notes", default="", help="free-form notes stored in the checkpoints")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    m = p.add_argument_group("model (ModelConfig)")
    m.add_argument("--model-type", choices=["rir_ebt_grc", "ebt_grc", "bt_grc", "bbt_grc"])
    m.add_argument("--hidden-size", type=int, metavar="D", help="D (scorer sizes follow: D/2)")
    m.add_argument("--beam-size", type=int, metavar="K")
    m.add_argument("--chunk-width", type=int, metavar="W")
    m.add_argument("--alignment", choices=["sample", "rank", "random", "kbest"])
    m.add_argument("--no-s4d", action="store_true", help="drop the pre-chunk S4D layer")
    m.add_argument("--dropout", type=float)
    m.add_argument("--scorer-slice", type=int)
    m.add_argument("--scorer-hidden", type=int)
    t = p.add_argument_group("training (TrainConfig)")
    t.add_argument("--device", help="auto, cpu or cuda (default auto)")
    t.add_argument("--amp", action="store_true", default=None, help="bf16 autocast on CUDA")
    t.add_argument("--epochs", type=int)
    t.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    t.add_argument("--max-minutes", type=float, help="stop after this many minutes of this run")
    t.add_argument("--batch-size", type=int, help="global batch size")
    t.add_argument("--lr", type=float)
    t.add_argument("--weight-decay", type=float)
    t.add_argument(
        "--optimizer",
        choices=["ranger", "ranger_authors", "adamw"],
        help="ranger: the library's defaults (the shipped model's); ranger_authors: the "
        "authors' settings (SPEC 7.1); adamw",
    )
    t.add_argument("--clip", type=float, help="max gradient norm (0: off)")
    t.add_argument("--patience", type=int, help="early stopping patience (evaluations)")
    t.add_argument("--eval-every", type=int, help="steps between dev evaluations (0: epochs)")
    t.add_argument("--eval-batch-size", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument(
        "--chunk-widths",
        type=_int_list,
        metavar="W,W,...",
        help="chunk-width augmentation: each step draws its RIR chunk width from this list",
    )
    t.add_argument("--init-from", metavar="CKPT", help="start from this checkpoint's weights")
    t.add_argument(
        "--select-on",
        choices=["dev", "groups"],
        help="model selection and LR schedule on the dev accuracy (dev, the paper's) or on the "
        "mean over the unchunked, chunked and long dev groups (groups)",
    )
    t.add_argument(
        "--batching",
        choices=["sorted", "buckets"],
        help="batches of similar length (sorted) or the authors' mixed 640-row buckets",
    )
    t.add_argument(
        "--chunk-rule",
        choices=["example", "batch"],
        help="chunk each training row by its own length (example, SPEC 3) or by its batch's "
        "longest row (batch, the authors' code: short tails)",
    )
    t.add_argument(
        "--probe-every", type=int, help="evaluations between runs of the length probe (default 1)"
    )
    d = p.add_argument_group("data (DataRecipe)")
    d.add_argument("--train-n", type=int, help="take the first N training examples")
    d.add_argument("--dev-n", type=int, help="take the first N dev examples")
    d.add_argument("--max-train-tokens", type=int, help="drop longer training examples")
    d.add_argument(
        "--min-train-tokens", type=int, help="drop shorter training examples (a curriculum)"
    )
    d.add_argument("--max-dev-tokens", type=int, help="drop longer dev examples")
    d.add_argument("--train-file", metavar="FILE.tsv", help="train on a TSV file instead")
    d.add_argument("--dev-file", metavar="FILE.tsv", help="select on a TSV file instead")
    d.add_argument(
        "--probe-split",
        help="a length probe logged at evaluations, e.g. len_200_300 (a standard split)",
    )
    d.add_argument("--probe-n", type=int, help="the probe's first N examples (default 100)")
    return p


_MODEL_FLAGS = (
    "model_type",
    "hidden_size",
    "beam_size",
    "chunk_width",
    "alignment",
    "dropout",
    "scorer_slice",
    "scorer_hidden",
)
_TRAIN_FLAGS = (
    "device",
    "amp",
    "epochs",
    "max_steps",
    "max_minutes",
    "batch_size",
    "lr",
    "weight_decay",
    "optimizer",
    "clip",
    "patience",
    "eval_every",
    "eval_batch_size",
    "seed",
    "chunk_widths",
    "init_from",
    "select_on",
    "probe_every",
    "chunk_rule",
    "batching",
)
_DATA_FLAGS = (
    "train_n",
    "dev_n",
    "max_train_tokens",
    "min_train_tokens",
    "max_dev_tokens",
    "train_file",
    "dev_file",
    "probe_split",
    "probe_n",
)


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m rir_core.train``; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    model_o = _given(args, _MODEL_FLAGS)
    if args.no_s4d:
        model_o["use_s4d"] = False
    train_o = _given(args, _TRAIN_FLAGS)
    data_o = _given(args, _DATA_FLAGS)
    try:
        run = prepare(
            args.preset,
            config_file=args.config,
            model_overrides=model_o,
            train_overrides=train_o,
            data_overrides=data_o,
            out=args.out,
            resume=args.resume,
            log=args.log,
            progress=not args.no_progress,
            notes=args.notes,
        )
    except (*SETUP_ERRORS, OSError) as err:
        print(cli_error(parser.prog, err), file=sys.stderr)
        return 2
    main_rank = run.env.rank == 0
    try:
        result = run.fit(handle_signals=True)
    except KeyboardInterrupt:
        last = run.trainer.last_path
        kept = f"; the last checkpoint is {last}" if last else ""
        print(f"{parser.prog}: aborted by a second Ctrl-C{kept}.", file=sys.stderr)
        return 130
    if not main_rank:
        return 1 if result.status == "non_finite" else 0
    if result.status == "non_finite":
        print(f"{parser.prog}: error: {result.message}.", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        print(f"stopped at step {result.step}; resume with --resume {run.out_dir}", file=sys.stderr)
        return 0
    best = result.best_dev_accuracy
    best_txt = f"; best dev accuracy {best:.4f} in {result.best_path}" if best is not None else ""
    print(f"done: {result.message}{best_txt}; last checkpoint {result.last_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
