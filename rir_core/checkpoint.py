"""Checkpoints: safetensors weights + a JSON sidecar, written atomically, loaded with validation.

Layout of a checkpoint directory ``NAME/`` (see CONTRACT.md, "Checkpoint format")::

    NAME/model.safetensors   the weights (never pickle)
    NAME/model.json          {"format_version": 1, "model_config": {...}, "vocab": [...],
                              "metadata": {...}}
    NAME/resume.safetensors  optional: every tensor of the training state (optimizer moments,
                             Lookahead slow weights, RNG states), flattened with dotted names
    NAME/resume.json         optional: everything else of the training state (step, epoch, data
                             position, scheduler, counters), tensors replaced by references

A pair of files ``X.safetensors`` + ``X.json`` (same stem, no resume state) is also accepted.

Why a directory written aside and then renamed: a reader must never see half a checkpoint. The
new checkpoint is written into ``NAME.tmp-XXXX`` next to the target and fsynced; the previous one
is moved aside to ``NAME.old-XXXX``, the new one renamed into place, and only then the old one
deleted. A crash between the two renames leaves ``NAME.old-XXXX``, which loading and the next save
pick up, so the last good checkpoint is never lost. Saves into one folder take turns, and readers
wait for a save in progress, through an flock on the folder (:func:`_folder_lock`).

Loading trusts nothing: a foreign file (a pickle renamed ``model.safetensors``, random bytes, a
truncated download) fails in the safetensors header parser and is never unpickled; every field of
the JSON is type-checked; tensor names and shapes are compared with the model the config builds.
Every failure is a :class:`CheckpointError` with one sentence naming the file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from rir_core.config import ConfigError, ModelConfig, short_repr
from rir_core.data import JSONFileError, read_json
from rir_core.vocab import TOKENS

try:
    import fcntl
except ImportError:  # Windows: saves are then serialised within one process only
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
SIDECAR_FILE = "model.json"
RESUME_TENSORS_FILE = "resume.safetensors"
RESUME_JSON_FILE = "resume.json"
_SIDECAR_KEYS = {"format_version": int, "model_config": dict, "vocab": list, "metadata": dict}
# Optional metadata fields and their JSON types (anything else in metadata is free-form).
_METADATA_TYPES: dict[str, type | tuple[type, ...]] = {
    "torch_version": str,
    "created_at": str,
    "notes": str,
    "train": dict,
    "data": dict,
    "metrics": dict,
    "seed": int,
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one sentence naming the file."""


@dataclass
class CheckpointInfo:
    """What the JSON sidecar says about a checkpoint (read without touching the weights).

    Attributes:
        path: the checkpoint directory (or the weights file of a file pair).
        model_config: the validated config that rebuilds the model.
        metadata: training recipe, data recipe, metrics per split, versions, notes.
        format_version: the sidecar's format version.
        vocab: the vocabulary the weights were trained with.
        has_resume: whether the training state (``resume.*``) is stored alongside.
    """

    path: Path
    model_config: ModelConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    vocab: list[str] = field(default_factory=lambda: list(TOKENS))
    has_resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (for the app's model picker)."""
        return {
            "path": str(self.path),
            "format_version": self.format_version,
            "model_config": self.model_config.to_dict(),
            "vocab": list(self.vocab),
            "metadata": self.metadata,
            "has_resume": self.has_resume,
        }


# --------------------------------------------------------------------------------------------
# Paths and atomic writes


@dataclass(frozen=True)
class _Files:
    weights: Path
    sidecar: Path
    folder: Path | None  # the checkpoint directory, None for a bare file pair


def _backups(folder: Path) -> list[Path]:
    """``NAME.old-XXXX`` siblings left by a save that was killed between its two renames."""
    if not folder.parent.is_dir():
        return []
    found = []
    for path in folder.parent.glob(f"{folder.name}.old-*"):
        with contextlib.suppress(OSError):  # removed meanwhile by a save that completed
            found.append((path.stat().st_mtime, path))
    return [path for _, path in sorted(found)]


def _resolve(path: str | os.PathLike[str]) -> _Files:
    """Map a directory, a ``.safetensors`` or a ``.json`` path to the checkpoint's files."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json") and not p.is_dir():
        if p.name in (WEIGHTS_FILE, SIDECAR_FILE, RESUME_TENSORS_FILE, RESUME_JSON_FILE):
            p = p.parent
        else:
            stem = p.with_suffix("")
            return _Files(stem.with_suffix(".safetensors"), stem.with_suffix(".json"), None)
    if not p.exists():
        backups = _backups(p)
        if backups:  # a save was interrupted between its two renames: use the previous one
            p = backups[-1]
        else:
            raise CheckpointError(f"checkpoint {path} does not exist.")
    if not p.is_dir():
        raise CheckpointError(
            f"checkpoint {path} is neither a checkpoint directory nor a .safetensors/.json file."
        )
    return _Files(p / WEIGHTS_FILE, p / SIDECAR_FILE, p)


_SAVE_LOCK = threading.Lock()  # saves within this process, where there is no flock


@contextlib.contextmanager
def _folder_lock(parent: Path, shared: bool = False) -> Iterator[None]:
    """Lock the folder a checkpoint lives in: exclusively to save, shared to read.

    Two saves into the same folder (two threads, or a resumed run next to a worker that is
    still alive) must not interleave: each one starts by deleting the ``NAME.tmp-*`` folders
    of saves that crashed, which would delete the other's half-written temporary (or, after
    its rename, empty the installed checkpoint), and their renames could cross. A reader
    (the app reloading ``best/`` while a job saves it) must not look between a save's two
    renames. The lock is an flock on the folder itself, so no lock file is left behind, and it
    holds across processes. Reading a folder that cannot be opened (missing: the read fails
    with its own sentence) goes without.
    """
    try:
        fd = os.open(parent, os.O_RDONLY) if fcntl is not None else None
    except OSError:
        if not shared:
            raise
        fd = None
    try:
        with contextlib.nullcontext() if shared else _SAVE_LOCK:
            if fd is not None:
                # A filesystem without flock: as safe as without the lock, no safer.
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
    finally:
        if fd is not None:
            os.close(fd)  # also releases the flock


def _reading(path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[None]:
    """The shared lock for reading the checkpoint named by ``path`` (see :func:`_folder_lock`)."""
    p = Path(path)
    if p.name in (WEIGHTS_FILE, SIDECAR_FILE, RESUME_TENSORS_FILE, RESUME_JSON_FILE):
        p = p.parent
    return _folder_lock(p.parent, shared=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported on this platform / filesystem
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _write_json(path: Path, obj: Any, strict: bool = True) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=not strict)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------------------------
# Nested training state <-> (JSON, named tensors)

_TENSOR, _NDARRAY, _TUPLE, _ITEMS = "__tensor__", "__ndarray__", "__tuple__", "__items__"
_RESERVED = {_TENSOR, _NDARRAY, _TUPLE, _ITEMS}


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], name: str = "state") -> Any:
    """Split a nested state (dicts, lists, tuples, numbers, strings, tensors, numpy arrays) into
    JSON and a dict of named tensors; tuples and non-string dict keys are kept exactly."""
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        while name in tensors:  # dotted paths can collide ({"a.b": x, "a": {"b": y}})
            name += "_"
        if isinstance(obj, np.ndarray):
            tensors[name] = torch.from_numpy(np.ascontiguousarray(obj)).clone()
            return {_NDARRAY: name}
        tensors[name] = obj.detach().to("cpu").contiguous().clone()
        return {_TENSOR: name}
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten_state(v, tensors, f"{name}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{name}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj) and not _RESERVED & set(obj):
            return {k: flatten_state(v, tensors, f"{name}.{k}") for k, v in obj.items()}
        return {
            _ITEMS: [
                [
                    flatten_state(k, tensors, f"{name}.key{i}"),
                    flatten_state(v, tensors, f"{name}.{k}"),
                ]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    raise CheckpointError(f"cannot store a {type(obj).__name__} in a checkpoint ({name}).")


def unflatten_state(obj: Any, tensors: Mapping[str, torch.Tensor], used: set[str]) -> Any:
    """Inverse of :func:`flatten_state`; records every tensor name it resolves in ``used``."""
    if isinstance(obj, list):
        return [unflatten_state(v, tensors, used) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1 and (_TENSOR in obj or _NDARRAY in obj):
        ref = obj.get(_TENSOR, obj.get(_NDARRAY))
        if not isinstance(ref, str) or ref not in tensors:
            raise KeyError(ref)
        used.add(ref)
        return tensors[ref] if _TENSOR in obj else tensors[ref].numpy()
    if len(obj) == 1 and _TUPLE in obj:
        return tuple(unflatten_state(v, tensors, used) for v in obj[_TUPLE])
    if len(obj) == 1 and _ITEMS in obj:
        out = {}
        for pair in obj[_ITEMS]:
            key, value = pair
            out[unflatten_state(key, tensors, used)] = unflatten_state(value, tensors, used)
        return out
    return {k: unflatten_state(v, tensors, used) for k, v in obj.items()}


# --------------------------------------------------------------------------------------------
# Saving


def _full_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    meta = dict(metadata or {})
    meta.setdefault("torch_version", torch.__version__)
    meta.setdefault("created_at", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    meta.setdefault("notes", "")
    for key, kind in _METADATA_TYPES.items():
        if key in meta and not _is_type(meta[key], kind):
            raise CheckpointError(f"metadata field {key!r} must be {_type_name(kind)}.")
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"metadata must be plain finite JSON ({err}).") from None
    return meta


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    return {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    metadata: Mapping[str, Any] | None = None,
    resume_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (and optionally the training state) as the checkpoint directory ``path``.

    Args:
        path: the checkpoint directory to create or replace.
        model: a model with a ``config`` attribute (a :class:`ModelConfig`); DDP-wrapped models
            are unwrapped.
        metadata: JSON-able dict (training recipe, data recipe, metrics, notes...);
            ``torch_version``, ``created_at`` and ``notes`` are filled in when missing.
        resume_state: nested training state (see :func:`flatten_state`), stored as
            ``resume.safetensors`` + ``resume.json``.

    Returns:
        The checkpoint directory.

    The write is atomic: see the module docstring.
    """
    module = getattr(model, "module", model)
    config = getattr(module, "config", None)
    if not isinstance(config, ModelConfig):
        raise CheckpointError("the model has no ModelConfig in .config, so it cannot be saved.")
    target = Path(path)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    sidecar = {
        "format_version": FORMAT_VERSION,
        "model_config": config.to_dict(),
        "vocab": list(TOKENS),
        "metadata": _full_metadata(metadata),
    }
    resume_json: Any = None
    resume_tensors: dict[str, torch.Tensor] = {}
    if resume_state is not None:
        resume_json = flatten_state(dict(resume_state), resume_tensors)
    with _folder_lock(parent):
        _recover(target)
        _install(target, module, sidecar, resume_json, resume_tensors)
    return target


def _install(
    target: Path,
    module: torch.nn.Module,
    sidecar: dict[str, Any],
    resume_json: Any,
    resume_tensors: dict[str, torch.Tensor],
) -> None:
    """Write the checkpoint aside, then rename it into place (under :func:`_folder_lock`)."""
    parent = target.parent
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=parent))
    try:
        save_file(_model_tensors(module), str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        _fsync_file(tmp / WEIGHTS_FILE)
        _write_json(tmp / SIDECAR_FILE, sidecar)
        if resume_json is not None:
            save_file(resume_tensors, str(tmp / RESUME_TENSORS_FILE), metadata={"format": "pt"})
            _fsync_file(tmp / RESUME_TENSORS_FILE)
            # Resume state may hold -inf (e.g. the plateau scheduler's initial best).
            _write_json(
                tmp / RESUME_JSON_FILE,
                {"format_version": FORMAT_VERSION, "state": resume_json},
                strict=False,
            )
        _fsync_dir(tmp)
        old: Path | None = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{target.name}.old-", dir=parent))
            os.rmdir(old)
            os.replace(target, old)  # the previous checkpoint stays complete under its new name
        os.replace(tmp, target)
        _fsync_dir(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _cleanup_backups(target)


def _recover(target: Path) -> None:
    """Before writing: restore a checkpoint left aside by an interrupted save, drop stale temps."""
    if not target.exists():
        backups = _backups(target)
        if backups:
            os.replace(backups[-1], target)
    for stale in target.parent.glob(f"{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    _cleanup_backups(target)


def _cleanup_backups(target: Path) -> None:
    if target.exists():
        for stale in _backups(target):
            shutil.rmtree(stale, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Loading


def _is_type(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "a whole number",
        str: "a string",
        dict: "a JSON object",
        list: "a list",
        float: "a number",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _read_json(path: Path, what: str, strict: bool = True) -> Any:
    """The JSON in ``path``; anything else is a :class:`CheckpointError` (one sentence, from
    :func:`rir_core.data.read_json`, which turns hostile files into sentences)."""
    if not path.is_file():
        raise CheckpointError(f"{what} {path} is missing.")
    try:
        return read_json(path, what, strict=strict)
    except JSONFileError as err:
        raise CheckpointError(str(err)) from None


def _parse_sidecar(files: _Files) -> CheckpointInfo:
    data = _read_json(files.sidecar, "checkpoint sidecar")
    where = files.sidecar
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint sidecar {where} must hold a JSON object.")
    missing = [k for k in _SIDECAR_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint sidecar {where} lacks the key(s) {', '.join(missing)}.")
    for key, kind in _SIDECAR_KEYS.items():
        if not _is_type(data[key], kind):
            raise CheckpointError(
                f"checkpoint sidecar {where}: {key} must be {_type_name(kind)}, "
                f"not {type(data[key]).__name__}."
            )
    if data["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint sidecar {where} has format_version {data['format_version']}, "
            f"but this code reads only version {FORMAT_VERSION}."
        )
    vocab = data["vocab"]
    if vocab != list(TOKENS):
        raise CheckpointError(
            f"checkpoint {where} was trained with a different vocabulary "
            f"({len(vocab)} tokens, expected {len(TOKENS)}: {' '.join(TOKENS)})."
        )
    meta = data["metadata"]
    for key, kind in _METADATA_TYPES.items():
        if key in meta and not _is_type(meta[key], kind):
            raise CheckpointError(
                f"checkpoint sidecar {where}: metadata.{key} must be {_type_name(kind)}."
            )
    try:
        config = ModelConfig.from_dict(data["model_config"])
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"checkpoint sidecar {where}: bad model_config: {err}") from None
    has_resume = files.folder is not None and (files.folder / RESUME_JSON_FILE).is_file()
    return CheckpointInfo(
        files.folder or files.weights, config, meta, data["format_version"], vocab, has_resume
    )


def checkpoint_info(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Read and validate only the JSON sidecar (cheap: for model pickers).

    Raises:
        CheckpointError: missing or malformed sidecar.
    """
    with _reading(path):
        return _parse_sidecar(_resolve(path))


def _foreign_hint(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK\x03\x04"):
        return " (it looks like a zip archive, e.g. a torch.save file; it is never unpickled)"
    if head[:1] == b"\x80":
        return " (it looks like a Python pickle; it is never unpickled)"
    return ""


def read_safetensors(path: Path, what: str = "weights file") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file on CPU; foreign or damaged files raise CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{what} {path} is missing.")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                tensors[name] = handle.get_tensor(name)
        return tensors
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "incomplete" in reason or "not fully covered" in reason:
            raise CheckpointError(f"{what} {path} is truncated or damaged ({reason}).") from None
        raise CheckpointError(
            f"{what} {path} is not a valid safetensors file{_foreign_hint(path)} ({reason})."
        ) from None


def _names(names: list[str]) -> str:
    """The first three tensor names, shortened, and how many more (names come from the file)."""
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(short_repr(n, quote=False) for n in names[:3]) + more


def _check_weights(
    where: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> None:
    missing = sorted(set(expected) - set(tensors))
    unknown = sorted(set(tensors) - set(expected))
    if missing:
        raise CheckpointError(
            f"weights file {where} lacks tensor(s) {_names(missing)} that the model config needs."
        )
    if unknown:
        raise CheckpointError(f"weights file {where} has unknown tensor(s) {_names(unknown)}.")
    for name, ref in expected.items():
        t = tensors[name]
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"weights file {where}: tensor {name} has shape {tuple(t.shape)}, "
                f"but the model config needs {tuple(ref.shape)}."
            )
        if not t.is_floating_point():
            raise CheckpointError(
                f"weights file {where}: tensor {name} has dtype {t.dtype}, not floating point."
            )
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"weights file {where}: tensor {name} holds NaN or infinity.")


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu"):
    """Rebuild the model of a checkpoint, in eval mode on ``device``.

    Args:
        path: the checkpoint directory, or the ``.safetensors`` / ``.json`` file inside it.
        device: where to put the model.

    Returns:
        ``(model, info)``: a :class:`~rir_core.model.ListOpsModel` and its :class:`CheckpointInfo`.

    Raises:
        CheckpointError: one sentence for anything wrong (see the module docstring).
    """
    from rir_core.model import build_model

    with _reading(path):
        files = _resolve(path)
        info = _parse_sidecar(files)
        tensors = read_safetensors(files.weights)
    # The names and shapes are checked against a model built on the meta device (shapes, no
    # memory) before the real one is allocated: a 1 KB sidecar asking for D = 4096 would
    # otherwise make the app allocate and initialise gigabytes for an upload it then refuses.
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        shapes = build_model(info.model_config).state_dict()
    _check_weights(files.weights, tensors, shapes)
    model = build_model(info.model_config)
    expected = model.state_dict()
    with torch.no_grad():
        for name, ref in expected.items():
            ref.copy_(tensors[name].to(ref.dtype))
    model.to(device)
    model.eval()
    return model, info


def load_resume_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The training state saved next to a checkpoint's weights (tensors on CPU).

    Raises:
        CheckpointError: the checkpoint has no resume state, or it is malformed.
    """
    with _reading(path):
        files = _resolve(path)
        if files.folder is None:
            raise CheckpointError(f"{path} is a bare file pair, which holds no training state.")
        json_path = files.folder / RESUME_JSON_FILE
        if not json_path.is_file():
            raise CheckpointError(
                f"checkpoint {files.folder} has no training state ({RESUME_JSON_FILE} is missing)."
            )
        data = _read_json(json_path, "training state", strict=False)  # may hold -inf
        if not isinstance(data, dict) or not isinstance(data.get("state"), dict):
            raise CheckpointError(f"training state {json_path} must hold an object with a 'state'.")
        if data.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"training state {json_path} has format_version {data.get('format_version')!r}, "
                f"but this code reads only version {FORMAT_VERSION}."
            )
        tensors = read_safetensors(files.folder / RESUME_TENSORS_FILE, "training-state file")
    used: set[str] = set()
    try:
        state = unflatten_state(data["state"], tensors, used)
    except KeyError as err:
        raise CheckpointError(
            f"training state {json_path} refers to tensor {err.args[0]!r}, which "
            f"{RESUME_TENSORS_FILE} does not hold."
        ) from None
    except (TypeError, ValueError):
        raise CheckpointError(f"training state {json_path} is malformed.") from None
    extra = sorted(set(tensors) - used)
    if extra:
        raise CheckpointError(
            f"training-state file {files.folder / RESUME_TENSORS_FILE} has unknown tensor(s) "
            f"{_names(extra)}."
        )
    return state
