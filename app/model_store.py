"""The models the app can use besides its default one: runs and uploaded checkpoints.

Every model has a key, which is all a URL or the session stores (never a path):

==================  ===========================================================================
``""``              the server's default model (``RIR_APP_MODEL``, else the shipped one)
``run:<id>``        ``RUNS/<id>/best`` (else ``last``): a run of the Training page or the CLI
``upload:<name>``   ``RUNS/uploads/<name>``: a checkpoint uploaded on the Training page
==================  ===========================================================================

:func:`resolve` maps a key to a checkpoint directory inside ``RUNS`` and refuses anything else.
Uploads (:func:`import_upload`) are size-limited and validated with
``rir_core.checkpoint.load_checkpoint`` before they are kept: a zip is searched for the two
files of a checkpoint (members with absolute paths or ``..`` are refused), a pickle is never
unpickled, and a bad file gets one sentence (:class:`UploadError`).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.jobs import UPLOADS_DIR, checkpoint_of, job_dir_for, list_jobs, runs_dir

UPLOAD_MAX_ENV = "RIR_UPLOAD_MAX_MB"
DEFAULT_UPLOAD_MAX_MB = 50  # also the server's maxUploadSize (.streamlit/config.toml)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
WEIGHTS, SIDECAR = "model.safetensors", "model.json"


class UploadError(ValueError):
    """An upload the app refuses; the message is one sentence for the page."""


@dataclass(frozen=True)
class ModelOption:
    key: str
    label: str
    path: Path | None  # None: the server's default model


def upload_limit_mb() -> int:
    try:
        return max(1, int(os.environ.get(UPLOAD_MAX_ENV, DEFAULT_UPLOAD_MAX_MB)))
    except ValueError:
        return DEFAULT_UPLOAD_MAX_MB


def uploads_dir(root: Path | None = None) -> Path:
    return (root or runs_dir()) / UPLOADS_DIR


def resolve(key: str, root: Path | None = None) -> Path | None:
    """The checkpoint directory of ``key``; None for the default model.

    Raises:
        KeyError: an unknown or malformed key, or a model that is not there (any more).
    """
    if not key:
        return None
    kind, _, name = key.partition(":")
    if kind == "run":
        run = job_dir_for(name, root)
        path = checkpoint_of(run) if run is not None else None
    elif kind == "upload" and NAME.match(name):
        base = uploads_dir(root).resolve()
        path = (base / name).resolve()
        if path.parent != base or not (path / SIDECAR).is_file():
            path = None
    else:
        path = None
    if path is None or not inside_runs(path, root):
        raise KeyError(key)
    return path


def source_label(source: str, root: Path | None = None) -> str:
    """Where a model's weights come from, in words a class may see: never a full filesystem
    path (it means nothing on a projector and tells a stranger about the server).

    ``pretrained/rir_ebt_grc`` (the shipped checkpoint, relative to the repository), ``run
    ID`` (a run in RUNS), ``uploaded checkpoint NAME``, else the checkpoint directory's name;
    anything that is not a path (``untrained (random weights)``) is returned as it is.
    """
    from rir_core.pretrained import PRETRAINED_DIR

    path = Path(source)
    if not path.is_absolute():
        return source
    path = path.resolve()
    shipped = PRETRAINED_DIR.resolve().parent  # pretrained/
    if path.is_relative_to(shipped):
        return "pretrained/" + path.relative_to(shipped).as_posix()
    runs = (root or runs_dir()).resolve()
    if path.is_relative_to(runs):
        parts = path.relative_to(runs).parts
        if parts and parts[0] == UPLOADS_DIR and len(parts) > 1:
            return f"uploaded checkpoint {parts[1]}"
        if parts:
            return f"run {parts[0]}" + (f" ({parts[1]})" if len(parts) > 1 else "")
    return f"checkpoint {path.name}"


def inside_runs(path: Path, root: Path | None = None) -> bool:
    """Whether ``path`` and the files of the checkpoint in it lie in RUNS once symlinks are
    followed: a run's ``best`` linked to a folder elsewhere is not a model the app may load."""
    base = (root or runs_dir()).resolve()
    try:
        files = [path.resolve(strict=True)]
        files += [(path / name).resolve() for name in (WEIGHTS, SIDECAR)]
    except OSError:  # gone, or a symlink loop
        return False
    return all(f.is_relative_to(base) for f in files)


def options(default_label: str, root: Path | None = None) -> list[ModelOption]:
    """The default model, then every run with a saved model (newest first), then uploads."""
    found = [ModelOption("", default_label, None)]
    for job in list_jobs(root):
        ckpt = job.checkpoint
        if ckpt is None or not inside_runs(ckpt, root):
            continue
        if job.external:
            label = f"Run {job.id} · command line"
        else:
            label = f"Run {job.id} · {job.settings.get('preset', '?')} · {job.status}"
        found.append(ModelOption(f"run:{job.id}", label, ckpt))
    folder = uploads_dir(root)
    if folder.is_dir():
        # Only kept uploads: an upload being validated is a ".upload-*" folder that may vanish
        # (renamed) between listing and stat, and must not break every page's model picker.
        kept = [p for p in folder.iterdir() if NAME.match(p.name) and inside_runs(p, root)]
        for path in sorted(kept, key=_mtime, reverse=True):
            if (path / SIDECAR).is_file():
                found.append(ModelOption(f"upload:{path.name}", f"Uploaded: {path.name}", path))
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile
        return 0.0


def zip_checkpoint(path: Path) -> bytes:
    """The checkpoint's two files in a zip (``NAME/model.safetensors``, ``NAME/model.json``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in (WEIGHTS, SIDECAR):
            archive.write(path / name, f"{path.parent.name}-{path.name}/{name}")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Uploads


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return (
        not p.is_absolute() and ".." not in p.parts and ":" not in (p.parts[0] if p.parts else "")
    )


def _from_zip(name: str, data: bytes, limit: int) -> tuple[Path, Path, bytes, bytes]:
    """``(weights name, sidecar name, weights, sidecar)`` from a zip holding one checkpoint."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UploadError(f"{name} is not a valid zip archive.") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        bad = [m.filename for m in members if not _safe_member(m.filename)]
        if bad:
            raise UploadError(
                f"{name} holds a path outside its folder ({bad[0]}), so it was refused."
            )
        weights = [m for m in members if m.filename.endswith(".safetensors")]
        weights = [m for m in weights if not m.filename.endswith("resume.safetensors")]
        sidecars = [
            m
            for m in members
            if m.filename.endswith(".json") and not m.filename.endswith("resume.json")
        ]
        if len(weights) != 1 or len(sidecars) != 1:
            raise UploadError(
                f"{name} must hold exactly one checkpoint: a .safetensors weights file and its "
                f".json sidecar (found {len(weights)} and {len(sidecars)})."
            )
        if weights[0].file_size + sidecars[0].file_size > limit:
            raise UploadError(
                f"{name} unpacks to {(weights[0].file_size + sidecars[0].file_size) / 2**20:.0f} "
                f"MB, more than the {limit // 2**20} MB limit."
            )
        try:
            return (
                Path(f"{weights[0].filename} in {name}"),
                Path(f"{sidecars[0].filename} in {name}"),
                archive.read(weights[0]),
                archive.read(sidecars[0]),
            )
        except (zipfile.BadZipFile, OSError, RuntimeError) as err:
            raise UploadError(f"{name} is damaged ({err}).") from None


@dataclass(frozen=True)
class _Upload:
    name: str  # what to call the kept checkpoint
    weights_name: str  # how messages name the two files
    sidecar_name: str
    weights: bytes
    sidecar: bytes


def _split_upload(files: list[tuple[str, bytes]], limit: int) -> _Upload:
    """The two files of a checkpoint, from one zip or from the two files themselves."""
    if not files:
        raise UploadError("Choose a .zip, or the .safetensors and .json files of a checkpoint.")
    total = sum(len(data) for _, data in files)
    if total > limit:
        raise UploadError(
            f"The upload is {total / 2**20:.1f} MB, more than the {limit // 2**20} MB limit."
        )
    names = [n for n, _ in files]
    pickled = [n for n in names if n.lower().endswith(PICKLE_SUFFIXES)]
    if pickled:
        raise UploadError(
            f"{pickled[0]} is a PyTorch pickle file; the app loads only safetensors checkpoints "
            "(a .safetensors file and its .json sidecar) and never unpickles anything."
        )
    if len(files) == 1 and names[0].lower().endswith(".zip"):
        w_name, s_name, weights, sidecar = _from_zip(names[0], files[0][1], limit)
        return _Upload(Path(names[0]).stem, str(w_name), str(s_name), weights, sidecar)
    by_suffix = {Path(n).suffix.lower(): (n, d) for n, d in files}
    if len(files) != 2 or set(by_suffix) != {".safetensors", ".json"}:
        raise UploadError(
            "Upload one .zip, or exactly two files: the .safetensors weights and the .json "
            f"sidecar of a checkpoint (got {', '.join(names)})."
        )
    (w_name, weights), (s_name, sidecar) = by_suffix[".safetensors"], by_suffix[".json"]
    stem = Path(w_name).stem
    return _Upload(stem if stem != "model" else "checkpoint", w_name, s_name, weights, sidecar)


def import_upload(files: list[tuple[str, bytes]], root: Path | None = None) -> ModelOption:
    """Validate an uploaded checkpoint and keep it under ``RUNS/uploads/``.

    Args:
        files: ``(file name, content)`` pairs: one zip, or a ``.safetensors`` and a ``.json``.

    Raises:
        UploadError: one sentence saying what is wrong.
    """
    from rir_core.checkpoint import CheckpointError, load_checkpoint

    limit = upload_limit_mb() * 2**20
    up = _split_upload(files, limit)
    folder = uploads_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".upload-", dir=folder))
    try:
        (tmp / WEIGHTS).write_bytes(up.weights)
        (tmp / SIDECAR).write_bytes(up.sidecar)
        try:
            load_checkpoint(tmp)  # every check: JSON, vocabulary, tensor names, shapes, values
        except CheckpointError as err:
            message = str(err).replace(str(tmp / WEIGHTS), up.weights_name)
            message = message.replace(str(tmp / SIDECAR), up.sidecar_name)
            message = message.replace(str(tmp), " and ".join(n for n, _ in files))
            raise UploadError(f"Not a usable checkpoint: {message}") from None
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", up.name).strip("-.")[:40] or "checkpoint"
        digest = hashlib.sha256(up.weights + up.sidecar).hexdigest()[:8]
        final = folder / f"{stem}-{digest}"
        if final.exists():  # the same files again
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            try:
                os.replace(tmp, final)
            except OSError:
                # The same files, uploaded by another session at the same moment, were kept
                # first (renaming onto a non-empty folder fails): theirs is ours.
                if not (final / SIDECAR).is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ModelOption(f"upload:{final.name}", f"Uploaded: {final.name}", final)
