"""Training: exact resume, clean interruption, non-finite loss, early stopping, CLI errors."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import rir_core.train as train_mod
from rir_core.checkpoint import (
    RESUME_TENSORS_FILE,
    WEIGHTS_FILE,
    checkpoint_info,
    flatten_state,
    load_checkpoint,
    load_resume_state,
    unflatten_state,
)
from rir_core.config import ConfigError, ModelConfig
from rir_core.data import write_tsv
from rir_core.generate import Recipe, generate
from rir_core.model import build_model
from rir_core.presets import PRESETS, get_preset
from rir_core.trainer import Callbacks, TrainConfig, Trainer, build_optimizer, build_scheduler

REPO = Path(__file__).resolve().parent.parent
TINY_MODEL = {"hidden_size": 16, "beam_size": 2, "chunk_width": 5}  # W 5: inputs get chunked
TINY_FLAGS = ["--hidden-size", "16", "--beam-size", "2", "--chunk-width", "5"]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("data")
    train, dev = folder / "train.tsv", folder / "dev.tsv"
    write_tsv(train, generate(Recipe(4, 30), 40, seed=11))
    write_tsv(dev, generate(Recipe(4, 30), 12, seed=12))
    return {"train_file": str(train), "dev_file": str(dev)}


def _run(out: Path, data: dict[str, str], resume: bool = False, **train_o) -> train_mod.TrainResult:
    if resume:
        return train_mod.train(resume=out, train_overrides=train_o)
    base = {"batch_size": 8, "eval_every": 3, "epochs": 10, "max_minutes": None}
    return train_mod.train(
        "classroom",
        model_overrides=TINY_MODEL,
        train_overrides={**base, **train_o},
        data_overrides=data,
        out=out,
    )


@pytest.mark.parametrize("optimizer", ["ranger", "adamw"])
def test_exact_resume(tmp_path: Path, data_files: dict[str, str], optimizer: str) -> None:
    """8 steps straight == 4 steps, stop, resume, 4 more: identical weights and optimizer state.

    40 examples in batches of 8 make 5 batches an epoch, so the resumed half crosses an epoch
    boundary; Ranger's Lookahead syncs its slow weights at step 6, after the resume; dropout
    (0.1) and the Gumbel noise both draw from restored RNG states.
    """
    straight = _run(tmp_path / "a", data_files, optimizer=optimizer, max_steps=8)
    first = _run(tmp_path / "b", data_files, optimizer=optimizer, max_steps=4)
    assert (straight.status, first.status) == ("max_steps", "max_steps")
    assert first.step == 4
    resumed = _run(tmp_path / "b", data_files, resume=True, max_steps=8)
    assert resumed.step == 8 and resumed.status == "max_steps"
    wa = load_file(str(tmp_path / "a" / "last" / WEIGHTS_FILE))
    wb = load_file(str(tmp_path / "b" / "last" / WEIGHTS_FILE))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    ra = load_file(str(tmp_path / "a" / "last" / RESUME_TENSORS_FILE))
    rb = load_file(str(tmp_path / "b" / "last" / RESUME_TENSORS_FILE))
    for name in ra:
        assert torch.equal(ra[name], rb[name]), name
    sa, sb = (load_resume_state(tmp_path / x / "last") for x in "ab")
    for key in (
        "step",
        "epoch",
        "batch_in_epoch",
        "best_dev_accuracy",
        "bad_evals",
        "evals",
        "scheduler",
    ):
        assert sa[key] == sb[key], key
    assert sa["epoch"] == 1 and sa["batch_in_epoch"] == 3
    if optimizer == "ranger":
        assert any("slow_buffer" in name for name in ra)
    # The log of the resumed run continues the step count.
    steps = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if s["event"] == "step"] == list(range(1, 9))


def test_ranger_state_dict_round_trips(tmp_path: Path) -> None:
    """Ranger keeps its Lookahead slow weights inside state_dict, so a reload continues exactly."""
    config = ModelConfig(
        hidden_size=16, scorer_slice=8, scorer_hidden=8, beam_size=2, use_s4d=False, dropout=0.0
    )
    cfg = TrainConfig(optimizer="ranger", lr=1e-2)
    torch.manual_seed(0)
    a = build_model(config)
    b = build_model(config)
    b.load_state_dict(a.state_dict())
    opt_a = build_optimizer(a, cfg)
    ids, mask, lengths = a.encode_texts(["[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 5 5 ]"])
    labels = torch.tensor([9, 0])

    def step(model, opt) -> None:
        opt.zero_grad()
        F.cross_entropy(model(ids, mask, 1, lengths=lengths), labels).backward()
        opt.step()

    for _ in range(4):
        step(a, opt_a)
    tensors: dict[str, torch.Tensor] = {}
    flat = json.loads(json.dumps(flatten_state(opt_a.state_dict(), tensors)))
    b.load_state_dict(a.state_dict())
    opt_b = build_optimizer(b, cfg)
    opt_b.load_state_dict(unflatten_state(flat, tensors, set()))
    for _ in range(4):  # crosses the Lookahead sync at step 6
        step(a, opt_a)
        step(b, opt_b)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name


def _trainer(data_files: dict[str, str], out: Path | None, **cfg) -> Trainer:
    from rir_core.data import read_tsv

    torch.manual_seed(0)
    model = build_model(
        ModelConfig(hidden_size=16, scorer_slice=8, scorer_hidden=8, beam_size=2, chunk_width=5)
    )
    config = TrainConfig(
        **{
            "batch_size": 8,
            "optimizer": "adamw",
            "checkpoint_dir": str(out) if out else None,
            "epochs": 5,
            **cfg,
        }
    )
    opt = build_optimizer(model, config)
    return Trainer(
        model,
        opt,
        build_scheduler(opt, config),
        read_tsv(data_files["train_file"]),
        read_tsv(data_files["dev_file"]),
        config,
    )


def test_non_finite_loss_stops_and_keeps_last_good(
    tmp_path: Path, data_files: dict[str, str]
) -> None:
    trainer = _trainer(data_files, tmp_path, eval_every=2)
    calls = itertools.count(1)

    def poisoned(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, labels)
        return loss * float("nan") if next(calls) == 3 else loss

    trainer.loss_fn = poisoned
    result = trainer.fit()
    assert result.status == "non_finite"
    assert "non-finite" in result.message and "last good checkpoint" in result.message
    assert result.step == 2
    info = checkpoint_info(tmp_path / "last")
    assert info.metadata["step"] == 2  # nothing was saved after the bad step
    saved, _ = load_checkpoint(tmp_path / "last")
    for (name, p), q in zip(trainer.module.named_parameters(), saved.parameters(), strict=True):
        assert torch.equal(p, q), name  # the poisoned update was never applied


def test_non_finite_cli_exit_status(
    tmp_path: Path,
    data_files: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Poisoned(Trainer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.loss_fn = lambda logits, labels: F.cross_entropy(logits, labels) * float("inf")

    monkeypatch.setattr(train_mod, "Trainer", Poisoned)
    rc = train_mod.main(
        [
            "--preset",
            "classroom",
            *TINY_FLAGS,
            "--train-file",
            data_files["train_file"],
            "--dev-file",
            data_files["dev_file"],
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "non-finite" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "last").exists()


def test_early_stopping_and_plateau(data_files: dict[str, str]) -> None:
    trainer = _trainer(data_files, None, lr=1e-12, eval_every=1, patience=2, plateau_patience=1)
    evals: list[dict] = []
    trainer.callbacks = Callbacks(on_eval=evals.append)
    result = trainer.fit()
    assert result.status == "early_stopped" and result.step == 3
    assert [e["improved"] for e in evals] == [True, False, False]
    assert evals[-1]["lr"] == pytest.approx(0.5e-12)  # halved after two flat evaluations


def test_api_callbacks_and_stop_request(tmp_path: Path, data_files: dict[str, str]) -> None:
    seen: dict[str, list] = {"step": [], "eval": [], "ckpt": [], "end": []}
    cbs = Callbacks(
        on_step=seen["step"].append,
        on_eval=seen["eval"].append,
        on_checkpoint=seen["ckpt"].append,
        on_end=seen["end"].append,
        should_stop=lambda: len(seen["step"]) >= 4,
    )
    result = train_mod.train(
        "classroom",
        model_overrides=TINY_MODEL,
        train_overrides={"batch_size": 8, "eval_every": 3},
        data_overrides=data_files,
        out=tmp_path / "run",
        callbacks=cbs,
    )
    # should_stop is polled during a step (so that DDP ranks can agree): step 5 still finishes.
    assert result.status == "interrupted" and result.step == 5
    assert result.model is not None and seen["end"] == [result]
    keys = {"step", "epoch", "loss", "accuracy", "lr", "seq_per_s", "elapsed_s", "eta_s"}
    assert keys <= set(seen["step"][0]) and seen["step"][-1]["step"] == 5
    assert len(seen["eval"]) == 1 and 0.0 <= seen["eval"][0]["dev_accuracy"] <= 1.0
    assert tmp_path / "run" / "last" in seen["ckpt"]
    assert load_resume_state(tmp_path / "run" / "last")["step"] == 5


def test_eta_counts_the_time_limit(tmp_path: Path, data_files: dict[str, str]) -> None:
    """With ``max_minutes`` the ETA is the time left when the limit comes before the epochs."""
    steps: list[dict] = []
    train_mod.train(
        "classroom",
        model_overrides=TINY_MODEL,
        train_overrides={"batch_size": 8, "epochs": 10_000, "max_minutes": 0.5, "max_steps": 3},
        data_overrides=data_files,
        out=tmp_path / "run",
        callbacks=Callbacks(on_step=steps.append),
    )
    for m in steps:  # 10,000 epochs would take hours; the limit leaves at most 30 s
        assert 0.0 <= m["eta_s"] <= 30.0 - (m["elapsed_s"] - steps[0]["elapsed_s"]) + 1e-6


def test_presets_and_overrides() -> None:
    paper = PRESETS["paper"]
    assert (paper.model.hidden_size, paper.model.beam_size, paper.model.chunk_width) == (128, 7, 30)
    assert paper.model.use_s4d and paper.train.optimizer == "ranger"
    assert (paper.train.lr, paper.train.weight_decay, paper.train.batch_size) == (1e-3, 1e-2, 128)
    assert (paper.train.epochs, paper.train.patience, paper.train.clip) == (100, 4, 1.0)
    cpu = get_preset("cpu", model={"beam_size": 3}, train={"lr": 1e-3}, data={"train_n": 10})
    assert (cpu.model.beam_size, cpu.train.lr, cpu.data.train_n) == (3, 1e-3, 10)
    with pytest.raises(ConfigError, match="unknown training config field"):
        get_preset("cpu", train={"learning_rate": 1})
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("gpu")
    recipe = train_mod.resolve_recipe("paper", model_overrides={"hidden_size": 32})
    assert (recipe.model.scorer_slice, recipe.model.scorer_hidden) == (16, 16)


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = train_mod.main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_cli_errors(
    tmp_path: Path, data_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt" / "last"
    corrupt.mkdir(parents=True)
    (corrupt / "model.json").write_text("{oops")
    assert "not valid JSON" in _cli_error(["--resume", str(tmp_path / "corrupt")], capsys)
    assert "no run directory" in _cli_error(["--resume", str(tmp_path / "nothing")], capsys)
    bad_cfg = tmp_path / "cfg.json"
    bad_cfg.write_text(json.dumps({"train": {"lr": -1}}))
    assert "lr must be" in _cli_error(["--config", str(bad_cfg)], capsys)
    assert "does not exist" in _cli_error(["--config", str(tmp_path / "none.json")], capsys)
    for content, expected in [
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply to be read"),
        (b"\xff\xfe{", "is not a text file"),
        ('{"train": {"lr": NaN}}', "is not valid JSON (NaN is not a JSON number)"),
        ("[1]", "must hold a JSON object"),
    ]:
        hostile = tmp_path / "hostile.json"
        if isinstance(content, bytes):
            hostile.write_bytes(content)
        else:
            hostile.write_text(content)
        assert f"config file {hostile} {expected}" in _cli_error(["--config", str(hostile)], capsys)
    assert "beam_size must be" in _cli_error(["--beam-size", "0"], capsys)
    assert "needs a CUDA device" in _cli_error(
        ["--amp", "--device", "cpu", "--train-file", data_files["train_file"]], capsys
    )
    missing = str(tmp_path / "missing.tsv")
    assert "missing.tsv" in _cli_error(
        ["--train-file", missing, "--out", str(tmp_path / "r")], capsys
    )


def test_cli_resume_refuses_recipe_changes(
    tmp_path: Path, data_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path / "run", data_files, max_steps=1)
    assert "--lr cannot change when resuming" in _cli_error(
        ["--resume", str(tmp_path / "run"), "--lr", "0.1"], capsys
    )
    assert "already holds a run" in _cli_error(
        ["--preset", "classroom", "--out", str(tmp_path / "run")], capsys
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_saves_and_resumes(
    tmp_path: Path, data_files: dict[str, str], signum: signal.Signals
) -> None:
    """The real CLI in a subprocess: SIGTERM or Ctrl-C (SIGINT) -> finish the step, save,
    exit 0; then resume. (Python's own SIGINT handling would abort with 130 instead.)"""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "rir_core.train",
        "--preset",
        "classroom",
        *TINY_FLAGS,
        "--train-file",
        data_files["train_file"],
        "--dev-file",
        data_files["dev_file"],
        "--batch-size",
        "4",
        "--epochs",
        "1000",
        "--eval-every",
        "1000",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log = out / "log.jsonl"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if log.exists() and log.read_text().count('"event": "step"') >= 3:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the training run did not make 3 steps in 90 s")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "resume with --resume" in err and "Traceback" not in err
    state = load_resume_state(out / "last")
    stopped_at = state["step"]
    assert stopped_at >= 3
    assert f"stopped at step {stopped_at}; resume with --resume {out}" in err
    end = json.loads(log.read_text().splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "interrupted"
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "rir_core.train",
            "--resume",
            str(out),
            "--max-steps",
            str(stopped_at + 2),
            "--no-progress",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert load_resume_state(out / "last")["step"] == stopped_at + 2


def test_chunk_width_augmentation_draws_per_step_and_resumes_exactly(
    tmp_path: Path, data_files: dict[str, str]
) -> None:
    """Each step runs at a width drawn from ``chunk_widths``; a resumed run draws the same."""
    trainer = _trainer(data_files, None, chunk_widths=(2, 3, 30))
    widths = [trainer.step_chunk_width(s) for s in range(60)]
    assert set(widths) == {2, 3, 30}
    assert widths == [trainer.step_chunk_width(s) for s in range(60)]
    assert _trainer(data_files, None).step_chunk_width(0) is None
    # The width reaches the model: record what each forward pass was given.
    seen: list[int | None] = []
    original = trainer.module.forward

    def spy(*args, **kwargs):
        seen.append(kwargs.get("chunk_width"))
        return original(*args, **kwargs)

    trainer.model.forward = spy  # type: ignore[method-assign]
    for step, batch in enumerate(trainer.epoch_batches(0)[:4]):
        trainer.step = step
        trainer._train_step(batch)
    assert seen == widths[:4]
    # Exact resume still holds with the augmentation on.
    straight = _run(tmp_path / "a", data_files, chunk_widths=(2, 3), max_steps=6)
    _run(tmp_path / "b", data_files, chunk_widths=(2, 3), max_steps=3)
    resumed = _run(tmp_path / "b", data_files, resume=True, max_steps=6)
    assert straight.step == resumed.step == 6
    wa = load_file(str(tmp_path / "a" / "last" / WEIGHTS_FILE))
    wb = load_file(str(tmp_path / "b" / "last" / WEIGHTS_FILE))
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    with pytest.raises(ConfigError, match="chunk width must be an integer of at least 2"):
        TrainConfig(chunk_widths=(1, 5))


def test_init_from_starts_with_the_checkpoint_weights(
    tmp_path: Path, data_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path / "base", data_files, max_steps=2)
    base = load_file(str(tmp_path / "base" / "last" / WEIGHTS_FILE))
    run = train_mod.prepare(
        "classroom",
        model_overrides=TINY_MODEL,
        train_overrides={"init_from": str(tmp_path / "base" / "last"), "max_steps": 1},
        data_overrides=data_files,
        out=tmp_path / "tuned",
    )
    start = run.trainer.module.state_dict()
    assert start.keys() == base.keys()
    for name in base:
        assert torch.equal(start[name], base[name]), name
    assert run.fit().step == 1
    sidecar = json.loads((tmp_path / "tuned" / "last" / "model.json").read_text())
    assert str(tmp_path / "base" / "last") in json.dumps(sidecar)  # the recipe records it
    # A checkpoint of another shape is refused in one sentence.
    err = _cli_error(
        [
            "--preset",
            "classroom",
            "--hidden-size",
            "24",
            "--init-from",
            str(tmp_path / "base" / "last"),
            "--train-file",
            data_files["train_file"],
            "--out",
            str(tmp_path / "other"),
        ],
        capsys,
    )
    assert "its model differs from this run's in hidden_size 16 (run: 24)" in err


def test_init_from_may_change_the_search_settings(
    tmp_path: Path, data_files: dict[str, str]
) -> None:
    """Chunk width, beam size, alignment and dropout carry no weights: a fine-tune at W 8 may
    start from a checkpoint trained at another W (the chunk-composition diagnostic does)."""
    _run(tmp_path / "base", data_files, max_steps=1)
    base = load_file(str(tmp_path / "base" / "last" / WEIGHTS_FILE))
    theirs = checkpoint_info(tmp_path / "base" / "last").model_config
    changed = {
        "chunk_width": theirs.chunk_width + 3,
        "beam_size": theirs.beam_size + 1,
        "alignment": "kbest" if theirs.alignment.value != "kbest" else "rank",
        "dropout": 0.3,
    }
    run = train_mod.prepare(
        "classroom",
        model_overrides={**TINY_MODEL, **changed},
        train_overrides={"init_from": str(tmp_path / "base" / "last"), "max_steps": 1},
        data_overrides=data_files,
        out=tmp_path / "tuned",
    )
    start = run.trainer.module.state_dict()
    for name in base:
        assert torch.equal(start[name], base[name]), name
    assert run.trainer.module.config.chunk_width == theirs.chunk_width + 3  # the run's own W
    assert run.fit().step == 1


def test_min_train_tokens_keeps_the_longer_inputs(data_files: dict[str, str]) -> None:
    from rir_core.presets import DataRecipe

    everything, _ = DataRecipe(**data_files).load()
    cut = sorted(len(ex) for ex in everything)[len(everything) // 2]
    longer, dev = DataRecipe(**data_files, min_train_tokens=cut).load()
    assert longer == [ex for ex in everything if len(ex) >= cut]
    assert 0 < len(longer) < len(everything) and len(dev) == 12  # dev is not filtered
    with pytest.raises(ConfigError, match="min_train_tokens must be a positive whole number"):
        DataRecipe(min_train_tokens=0)
    recipe = train_mod.resolve_recipe("cpu", data_overrides={"min_train_tokens": 46})
    assert recipe.data.min_train_tokens == 46


def _log_events(run_dir: Path, event: str) -> list[dict]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if json.loads(x)["event"] == event]


def test_evaluations_report_each_length_group(tmp_path: Path, data_files: dict[str, str]) -> None:
    """Dev accuracy per length group (unchunked < 1.5 W, chunked, long = past the longest
    training input), the training accuracy on the same groups since the previous evaluation,
    and a selection score that is their mean with select_on="groups"."""
    from rir_core.data import read_tsv
    from rir_core.trainer import group_score, length_group

    train = read_tsv(data_files["train_file"])
    longest = max(len(ex) for ex in train)
    long_dev = tmp_path / "dev.tsv"  # the dev file plus inputs longer than any training input
    dev = read_tsv(data_files["dev_file"]) + generate(Recipe(longest + 1, longest + 20), 4, seed=5)
    write_tsv(long_dev, dev)
    result = _run(
        tmp_path / "run",
        # No length filter on either side: the groups are counted against the whole train file.
        {**data_files, "dev_file": str(long_dev), "max_dev_tokens": 100, "max_train_tokens": None},
        max_steps=6,
        select_on="groups",
    )
    assert result.status == "max_steps"
    evals = _log_events(tmp_path / "run", "eval")
    assert [e["step"] for e in evals] == [3, 6]
    want = {g: 0 for g in ("unchunked", "chunked", "long")}
    for ex in dev:
        want[length_group(len(ex), 5, longest)] += 1
    assert want["unchunked"] and want["chunked"] and want["long"] == 4
    steps = _log_events(tmp_path / "run", "step")
    for e in evals:
        assert {g: v["n"] for g, v in e["dev_groups"].items()} == want
        hits = sum(round(v["accuracy"] * v["n"]) for v in e["dev_groups"].values())
        assert hits / len(dev) == pytest.approx(e["dev_accuracy"])
        assert e["score"] == pytest.approx(group_score(e["dev_groups"]))
        assert e["select_on"] == "groups"
        # Three steps of 8 training rows since the previous evaluation, none longer than trained.
        assert sum(v["n"] for v in e["train_groups"].values()) == 24
        assert e["train_groups"]["long"]["n"] == 0
        window = [s for s in steps if e["step"] - 3 < s["step"] <= e["step"]]
        right = sum(s["accuracy"] * s["batch"] for s in window)
        got = sum(v["accuracy"] * v["n"] for v in e["train_groups"].values() if v["n"])
        assert got == pytest.approx(right)
    assert result.best_dev_accuracy == pytest.approx(max(e["score"] for e in evals))
    sidecar = json.loads((tmp_path / "run" / "best" / "model.json").read_text())
    assert set(sidecar["metadata"]["metrics"]["dev"]["groups"]) == set(want)


def test_the_length_probe_runs_every_few_evaluations(
    tmp_path: Path, data_files: dict[str, str]
) -> None:
    probe = generate(Recipe(31, 45), 6, seed=8)
    run = train_mod.prepare(
        "classroom",
        model_overrides=TINY_MODEL,
        train_overrides={"batch_size": 8, "eval_every": 1, "max_steps": 5, "probe_every": 2},
        data_overrides=data_files,
        out=tmp_path / "run",
    )
    run.trainer.probe_data, run.trainer.probe_name = probe, "longer"
    run.fit()
    evals = _log_events(tmp_path / "run", "eval")
    assert [("probe" in e) for e in evals] == [True, False, True, False, True]
    for e in evals[::2]:
        assert e["probe"]["split"] == "longer" and e["probe"]["n"] == 6
    assert all(e["score"] == e["dev_accuracy"] for e in evals)  # select_on "dev": the paper's


def test_the_probe_split_comes_from_the_data_recipe(data_files: dict[str, str]) -> None:
    from rir_core.presets import DataRecipe

    assert DataRecipe(**data_files).load_probe() == []
    with pytest.raises(ConfigError, match="probe_split must be one of"):
        DataRecipe(probe_split="len_2000")
    with pytest.raises(ConfigError, match="select_on must be one of"):
        TrainConfig(select_on="loss")
    with pytest.raises(ConfigError, match="chunk_rule must be one of"):
        TrainConfig(chunk_rule="chunk")


def test_the_batch_chunk_rule_reaches_the_model(
    tmp_path: Path, data_files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rir_core.model import ListOpsModel

    seen: list[bool] = []
    forward = ListOpsModel.forward_with_details

    def spy(self, *args, **kwargs):
        if self.training:
            seen.append(kwargs.get("batch_chunk_rule", False))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(ListOpsModel, "forward_with_details", spy)
    _run(tmp_path / "batch", data_files, max_steps=2, chunk_rule="batch")
    _run(tmp_path / "example", data_files, max_steps=2)
    assert seen == [True, True, False, False]


def test_the_eval_line_puts_held_out_beside_training_accuracy() -> None:
    line = train_mod.eval_line(
        {
            "step": 700,
            "dev_accuracy": 0.931,
            "dev_groups": {
                "unchunked": {"accuracy": 0.995, "n": 854},
                "chunked": {"accuracy": 0.64, "n": 130},
                "long": {"accuracy": 0.41, "n": 16},
            },
            "train_groups": {
                "unchunked": {"accuracy": 0.99, "n": 1000},
                "chunked": {"accuracy": 0.732, "n": 280},
                "long": {"accuracy": None, "n": 0},
            },
            "probe": {"split": "len_200_300", "accuracy": 0.45, "n": 100},
            "score": 0.931,
            "best_dev_accuracy": 0.94,
            "lr": 5e-4,
        }
    )
    assert line == (
        "step 700: dev 93.1% | unchunked 99.5% (train 99.0%) · chunked 64.0% (train 73.2%) · "
        "long 41.0% | len_200_300 45.0% of 100 | score 0.9310 (best 0.9400), lr 5.0e-04"
    )


def test_the_authors_batching_mixes_lengths_within_sorted_buckets() -> None:
    import random

    from rir_core.data import mixed_bucket_batches

    lengths = [random.Random(i).randint(2, 100) for i in range(1000)]
    a = mixed_bucket_batches(lengths, 16, random.Random("x"))
    assert a == mixed_bucket_batches(lengths, 16, random.Random("x"))  # a pure function
    assert a != mixed_bucket_batches(lengths, 16, random.Random("y"))
    assert sorted(i for b in a for i in b) == list(range(1000))  # every row once
    assert all(len(b) == 16 for b in a if len(b) != 1000 % 16)
    for b in a:
        assert [lengths[i] for i in b] == sorted(lengths[i] for i in b)
    # Buckets of 5 x 16 random rows: batches span wide length ranges (a global sort would
    # give spans of about one token).
    spans = sorted(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a)
    assert spans[len(spans) // 2] >= 10


def test_the_authors_ranger_settings(tmp_path: Path) -> None:
    from rir_core.trainer import build_optimizer

    model = build_model(ModelConfig(hidden_size=16, scorer_slice=8, scorer_hidden=8))
    opt = build_optimizer(model, TrainConfig(optimizer="ranger_authors", lr=2e-3))
    main, kernel = opt.param_groups
    assert (main["lr"], kernel["lr"]) == (2e-3, 1e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in kernel["params"]} == {
        n for n in names.values() if n.startswith("s4d.kernel.")
    }
    for g in (main, kernel):
        assert g["betas"] == (0.9, 0.999) and g["eps"] == 1e-8
        assert (g["k"], g["alpha"]) == (5, 0.8)
        assert g["weight_decay"] == 1e-2
    assert opt.use_gc is False  # no gradient centralization
    library = build_optimizer(model, TrainConfig(optimizer="ranger"))
    assert library.param_groups[0]["betas"] == (0.95, 0.999) and library.use_gc is True


@pytest.mark.parametrize("name", ["ranger", "ranger_authors"])
def test_the_first_ranger_steps_go_downhill(name: str) -> None:
    """RAdam's first steps (variance not yet rectified) must descend: pytorch_optimizer 4.1.0
    with ``degenerated_to_sgd=False`` moves parameters uphill there (a step size of -1)."""
    from rir_core.trainer import build_optimizer

    model = build_model(ModelConfig(hidden_size=16, scorer_slice=8, scorer_hidden=8))
    opt = build_optimizer(model, TrainConfig(optimizer=name, lr=1e-3, weight_decay=0.0))
    weight = model.head[-1].bias  # a vector: gradient centralization leaves its gradient as it is
    start = weight.detach().clone()
    for step in range(1, 8):  # through the unrectified steps and past them
        opt.zero_grad()
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        weight.grad = torch.ones_like(weight)  # the loss rises with every entry
        opt.step()
        assert (weight.detach() < start).all(), f"step {step} went uphill"


def test_exact_resume_with_the_authors_regime(tmp_path: Path, data_files: dict[str, str]) -> None:
    """Buckets, the batch chunk rule and the authors' Ranger resume bit for bit too."""
    regime = {"optimizer": "ranger_authors", "batching": "buckets", "chunk_rule": "batch"}
    _run(tmp_path / "a", data_files, max_steps=8, **regime)
    _run(tmp_path / "b", data_files, max_steps=4, **regime)
    _run(tmp_path / "b", data_files, resume=True, max_steps=8)
    for name in (WEIGHTS_FILE, RESUME_TENSORS_FILE):
        wa = load_file(str(tmp_path / "a" / "last" / name))
        wb = load_file(str(tmp_path / "b" / "last" / name))
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), key
