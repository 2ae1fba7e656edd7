"""Checkpoints: exact round trip, one clear sentence for every damaged file, atomic writes."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from rir_core.checkpoint import (
    RESUME_JSON_FILE,
    SIDECAR_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    checkpoint_info,
    flatten_state,
    load_checkpoint,
    load_resume_state,
    save_checkpoint,
    unflatten_state,
)
from rir_core.config import ModelConfig
from rir_core.model import build_model

TINY = ModelConfig(hidden_size=16, scorer_slice=8, scorer_hidden=8, beam_size=2, chunk_width=5)
TEXTS = ["[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 5 5 ]", "[MED 1 2 3 [MAX 4 5 6 ] 7 8 9 ]"]


def _model(seed: int = 0, config: ModelConfig = TINY) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(config).eval()


def _logits(model: torch.nn.Module) -> torch.Tensor:
    ids, mask, lengths = model.encode_texts(TEXTS)
    with torch.no_grad():
        return model(ids, mask, 3, lengths=lengths)


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "ckpt", _model(), {"notes": "tiny", "seed": 0})


def _error(path: Path | str) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), message
    return message


def test_round_trip_same_logits(tmp_path: Path) -> None:
    model = _model(1)
    path = save_checkpoint(tmp_path / "c", model, {"metrics": {"dev": {"accuracy": 0.5, "n": 2}}})
    loaded, info = load_checkpoint(path)
    assert not loaded.training
    assert torch.equal(_logits(model), _logits(loaded))
    assert info.model_config == TINY
    assert info.metadata["metrics"]["dev"]["accuracy"] == 0.5
    assert info.metadata["torch_version"] == torch.__version__
    assert "created_at" in info.metadata and info.has_resume is False
    # The directory, the weights file and the sidecar all name the same checkpoint.
    for p in (path, path / WEIGHTS_FILE, path / SIDECAR_FILE):
        again, _ = load_checkpoint(p)
        assert torch.equal(_logits(again), _logits(model))
    assert checkpoint_info(path).to_dict()["model_config"]["hidden_size"] == 16


def test_file_pair_round_trip(tmp_path: Path, ckpt: Path) -> None:
    shutil.copy(ckpt / WEIGHTS_FILE, tmp_path / "pair.safetensors")
    shutil.copy(ckpt / SIDECAR_FILE, tmp_path / "pair.json")
    model, _ = load_checkpoint(tmp_path / "pair.safetensors")
    assert torch.equal(_logits(model), _logits(_model()))


def test_resume_state_round_trip(tmp_path: Path) -> None:
    state = {
        "step": 7,
        "best": float("-inf"),
        "betas": (0.9, 0.999),
        "none": None,
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "m": torch.randn(2, 3)}},
            "param_groups": [{"params": [0], "lr": 1e-3}],
        },
        "rng": torch.get_rng_state(),
        "py": (3, tuple(range(5)), None),
    }
    path = save_checkpoint(tmp_path / "c", _model(), {}, resume_state=state)
    assert checkpoint_info(path).has_resume
    back = load_resume_state(path)
    assert back["step"] == 7 and back["best"] == float("-inf") and back["betas"] == (0.9, 0.999)
    assert list(back["optimizer"]["state"]) == [0]  # integer keys survive JSON
    assert torch.equal(back["optimizer"]["state"][0]["m"], state["optimizer"]["state"][0]["m"])
    assert back["optimizer"]["state"][0]["step"].shape == ()
    assert torch.equal(back["rng"], state["rng"]) and back["py"] == state["py"]
    tensors: dict[str, torch.Tensor] = {}
    flat = flatten_state({"a": [torch.ones(1)]}, tensors)
    assert unflatten_state(flat, tensors, set())["a"][0].item() == 1.0


def test_missing_files(tmp_path: Path, ckpt: Path) -> None:
    assert "does not exist" in _error(tmp_path / "nowhere")
    (ckpt / WEIGHTS_FILE).unlink()
    assert "is missing" in _error(ckpt)
    assert "is missing" in _error(tmp_path / "x.safetensors")


def test_truncated_weights(ckpt: Path) -> None:
    data = (ckpt / WEIGHTS_FILE).read_bytes()
    (ckpt / WEIGHTS_FILE).write_bytes(data[: len(data) - 100])
    assert "truncated" in _error(ckpt)
    (ckpt / WEIGHTS_FILE).write_bytes(data[:5])
    assert "not a valid safetensors file" in _error(ckpt)


def test_pickle_renamed_is_never_unpickled(tmp_path: Path, ckpt: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    (ckpt / WEIGHTS_FILE).write_bytes(pickle.dumps(Evil()))
    message = _error(ckpt)
    assert "pickle" in message and "never unpickled" in message
    assert not marker.exists()
    torch.save(_model().state_dict(), ckpt / WEIGHTS_FILE)  # a torch.save zip archive
    assert "zip archive" in _error(ckpt)


def test_random_bytes(ckpt: Path) -> None:
    (ckpt / WEIGHTS_FILE).write_bytes(bytes(range(256)) * 4)
    assert "not a valid safetensors file" in _error(ckpt)


def _edit_sidecar(ckpt: Path, edit) -> None:
    data = json.loads((ckpt / SIDECAR_FILE).read_text())
    edit(data)
    (ckpt / SIDECAR_FILE).write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.update(format_version="1"), "format_version must be a whole number"),
        (lambda d: d.update(format_version=True), "format_version must be a whole number"),
        (lambda d: d.update(format_version=2), "format_version 2"),
        (lambda d: d.pop("vocab"), "lacks the key(s) vocab"),
        (lambda d: d.update(metadata=[]), "metadata must be a JSON object"),
        (lambda d: d["metadata"].update(created_at=5), "metadata.created_at must be a string"),
        (lambda d: d.update(vocab=d["vocab"][::-1]), "different vocabulary"),
        (lambda d: d["model_config"].update(hidden_size="big"), "bad model_config"),
        (lambda d: d["model_config"].update(colour="red"), "unknown model config field"),
        (lambda d: d["model_config"].update(hidden_size=32, scorer_slice=8), "has shape"),
    ],
)
def test_bad_sidecar(ckpt: Path, edit, expected: str) -> None:
    _edit_sidecar(ckpt, edit)
    assert expected in _error(ckpt)


def test_sidecar_not_json(ckpt: Path) -> None:
    (ckpt / SIDECAR_FILE).write_text("{not json")
    assert "not valid JSON" in _error(ckpt)
    (ckpt / SIDECAR_FILE).write_text("[1, 2]")
    assert "must hold a JSON object" in _error(ckpt)


def test_wrong_tensor_names_and_shapes(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = save_checkpoint(tmp_path / "c", _model())
    tensors = {k: v.clone() for k, v in _model().state_dict().items()}
    extra = dict(tensors, surprise=torch.zeros(1))
    save_file(extra, str(path / WEIGHTS_FILE))
    assert "unknown tensor(s) surprise" in _error(path)
    missing = dict(tensors)
    missing.pop("head.4.bias")
    save_file(missing, str(path / WEIGHTS_FILE))
    assert "lacks tensor(s) head.4.bias" in _error(path)
    bad = dict(tensors, **{"head.4.bias": torch.zeros(3)})
    save_file(bad, str(path / WEIGHTS_FILE))
    assert "head.4.bias has shape (3,)" in _error(path)
    nan = dict(tensors, **{"head.4.bias": torch.full((10,), float("nan"))})
    save_file(nan, str(path / WEIGHTS_FILE))
    assert "NaN" in _error(path)


def test_bad_resume_state(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c", _model(), {}, resume_state={"m": torch.ones(2)})
    with pytest.raises(CheckpointError, match="no training state"):
        load_resume_state(save_checkpoint(tmp_path / "d", _model()))
    (path / RESUME_JSON_FILE).write_text(
        json.dumps({"format_version": 1, "state": {"m": {"__tensor__": "elsewhere"}}})
    )
    with pytest.raises(CheckpointError, match="refers to tensor 'elsewhere'"):
        load_resume_state(path)


def test_crash_mid_save_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _model(1)
    path = save_checkpoint(tmp_path / "c", first, {"notes": "first"})
    real_replace = os.replace

    def crash_on_install(src, dst):  # the new checkpoint never reaches its final name
        if Path(dst) == path:
            raise OSError("simulated power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_install)
    with pytest.raises(OSError, match="power cut"):
        save_checkpoint(path, _model(2), {"notes": "second"})
    monkeypatch.setattr(os, "replace", real_replace)
    # The old checkpoint was moved aside, not lost: loading finds it, the next save restores it.
    loaded, info = load_checkpoint(path)
    assert info.metadata["notes"] == "first"
    assert torch.equal(_logits(loaded), _logits(first))
    assert not list(tmp_path.glob("c.tmp-*"))  # the half-written temp was removed
    save_checkpoint(path, _model(3), {"notes": "third"})
    assert checkpoint_info(path).metadata["notes"] == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_crash_while_writing_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rir_core.checkpoint as ck

    path = save_checkpoint(tmp_path / "c", _model(1), {"notes": "first"})

    def half_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(ck, "save_file", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _model(2), {"notes": "second"})
    assert checkpoint_info(path).metadata["notes"] == "first"
    load_checkpoint(path)


def test_unsavable_metadata(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="plain finite JSON"):
        save_checkpoint(tmp_path / "c", _model(), {"metrics": {"dev": float("nan")}})
    with pytest.raises(CheckpointError, match="must be a string"):
        save_checkpoint(tmp_path / "c", _model(), {"notes": 3})


def test_load_pretrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rir_core.pretrained as pretrained

    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "rir_ebt_grc")
    with pytest.raises(FileNotFoundError, match="pretrained model is not there yet"):
        pretrained.load_pretrained()
    model = _model(4)
    save_checkpoint(tmp_path / "rir_ebt_grc", model)
    loaded = pretrained.load_pretrained()
    assert not loaded.training and torch.equal(_logits(loaded), _logits(model))
