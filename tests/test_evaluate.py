"""Evaluation: the Python API, the CLI on the three TSV layouts, --json, --splits, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rir_core import evaluate as ev
from rir_core.checkpoint import WEIGHTS_FILE, save_checkpoint
from rir_core.config import ModelConfig
from rir_core.data import Example, read_tsv, write_tsv
from rir_core.generate import Recipe, generate
from rir_core.model import build_model

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = ModelConfig(hidden_size=16, scorer_slice=8, scorer_hidden=8, beam_size=2, chunk_width=5)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(TINY).eval()


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return generate(Recipe(4, 60), 40, seed=5)


@pytest.fixture
def ckpt(tmp_path: Path, model: torch.nn.Module) -> Path:
    return save_checkpoint(tmp_path / "ckpt", model, {"notes": "eval test"})


def test_evaluate_examples_matches_predict(model, examples) -> None:
    res = ev.evaluate_examples(model, examples, seed=3, batch_size=7, bucket_width=20)
    preds = model.predict([ex.text for ex in examples], seed=3)
    correct = sum(p == ex.label for p, ex in zip(preds, examples, strict=True))
    assert res["n"] == 40 and res["correct"] == correct
    assert res["accuracy"] == pytest.approx(correct / 40)
    assert sum(b["n"] for b in res["buckets"].values()) == 40
    assert set(res["buckets"]) <= {"0-19", "20-39", "40-59"}
    # The batch size does not change the result (per-example seeded draws).
    assert ev.evaluate_examples(model, examples, seed=3, batch_size=64)["correct"] == correct
    assert ev.evaluate_examples(model, [])["n"] == 0


def test_evaluate_restores_training_mode(model, examples) -> None:
    model.train()
    ev.evaluate_examples(model, examples[:4])
    assert model.training
    model.eval()


def test_cli_three_layouts_and_json(
    tmp_path: Path, ckpt: Path, model, examples, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = tmp_path / "ours.tsv"
    write_tsv(ours, examples)
    files = [str(FIXTURES / "original_small.tsv"), str(FIXTURES / "lra_small.tsv"), str(ours)]
    out = tmp_path / "res.json"
    rc = ev.main(
        [
            "--checkpoint",
            str(ckpt),
            "--data",
            *files,
            "--json",
            str(out),
            "--no-progress",
            "--seed",
            "2",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out.splitlines()
    heads = [line for line in printed if not line.startswith(" ")]
    assert [line.split("\t")[0] for line in heads] == files
    assert all("accuracy" in line for line in printed)
    data = json.loads(out.read_text())
    assert set(data["files"]) == set(files)
    for path in files:
        entry = data["files"][path]
        assert set(entry) == {"accuracy", "n", "buckets"}
        expected = ev.evaluate_examples(model, read_tsv(path), seed=2, bucket_width=100)
        assert {k: entry[k] for k in ("accuracy", "n")} == {
            "accuracy": expected["accuracy"],
            "n": expected["n"],
        }
        assert entry["buckets"] == expected["buckets"]
        assert sum(b["n"] for b in entry["buckets"].values()) == entry["n"]
    assert data["files"][str(ours)]["n"] == 40
    # one indented line per bucket, under its file's line
    assert len(printed) == len(files) + sum(len(data["files"][f]["buckets"]) for f in files)


def test_cli_limit_and_bucket_width_apply_to_data_files(
    tmp_path: Path, ckpt: Path, model, examples, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = tmp_path / "ours.tsv"
    write_tsv(ours, examples)
    out = tmp_path / "res.json"
    argv = ["--checkpoint", str(ckpt), "--data", str(ours), "--json", str(out), "--no-progress"]
    assert ev.main([*argv, "--limit", "7", "--bucket-width", "10"]) == 0
    entry = json.loads(out.read_text())["files"][str(ours)]
    expected = ev.evaluate_examples(model, examples[:7], bucket_width=10)
    assert entry["n"] == 7 and entry["accuracy"] == expected["accuracy"]
    assert entry["buckets"] == expected["buckets"]
    assert all(int(b.split("-")[1]) - int(b.split("-")[0]) == 9 for b in entry["buckets"])
    printed = capsys.readouterr().out
    assert f"{ours}\taccuracy" in printed and "tokens\taccuracy" in printed


def test_cli_inference_overrides(
    tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res.json"
    rc = ev.main(
        [
            "--checkpoint",
            str(ckpt / WEIGHTS_FILE),
            "--data",
            str(FIXTURES / "ours_small.tsv"),
            "--alignment",
            "kbest",
            "--beam-size",
            "3",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    assert json.loads(out.read_text())["settings"] == {"alignment": "kbest", "beam_size": "3"}


def test_cli_splits(
    tmp_path: Path,
    ckpt: Path,
    model,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import rir_core.generate as gen

    fake = {
        "dev": generate(Recipe(4, 30), 10, seed=1),
        "len_200_300": generate(Recipe(200, 300), 3, seed=2),
    }
    calls: list[tuple[str, int | None]] = []

    def load_split(name: str, cache_dir=None, n=None, progress=False):
        calls.append((name, n))
        return fake[name][:n]

    monkeypatch.setattr(gen, "load_split", load_split)
    out = tmp_path / "splits.json"
    rc = ev.main(
        [
            "--checkpoint",
            str(ckpt),
            "--splits",
            "dev,len_200_300",
            "--limit",
            "5",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    assert calls == [("dev", 5), ("len_200_300", 5)]
    data = json.loads(out.read_text())["splits"]
    assert data["dev"]["n"] == 5 and data["len_200_300"]["n"] == 3
    assert set(data["len_200_300"]["buckets"]) <= {"200-299", "300-399"}
    assert "200-299 tokens" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--data", "FIXTURES/bad_label.tsv"], "bad_label.tsv, line 2"),
        (["--data", "FIXTURES/bad_expr.tsv"], "malformed expression"),
        (["--data", "FIXTURES/nope.tsv"], "does not exist"),
        ([], "give --data"),
        (["--splits", "bogus"], "unknown split bogus"),
        (["--data", "FIXTURES/ours_small.tsv", "--batch-size", "0"], "--batch-size must be"),
        (["--data", "FIXTURES/ours_small.tsv", "--device", "cuda:99"], "cuda"),
    ],
)
def test_cli_data_errors(
    ckpt: Path, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--device" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    args = [a.replace("FIXTURES", str(FIXTURES)) for a in args]
    rc = ev.main(["--checkpoint", str(ckpt), *args, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_bad_checkpoint(tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ckpt / WEIGHTS_FILE).write_bytes(b"\x80\x04garbage" * 10)
    rc = ev.main(["--checkpoint", str(ckpt), "--data", str(FIXTURES / "ours_small.tsv")])
    err = capsys.readouterr().err
    assert rc == 2 and "never unpickled" in err and len(err.strip().splitlines()) == 1
    rc = ev.main(
        ["--checkpoint", str(tmp_path / "none"), "--data", str(FIXTURES / "ours_small.tsv")]
    )
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_cli_record_stores_metrics_per_split_in_the_checkpoint(
    tmp_path: Path, ckpt: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rir_core.generate as gen
    from rir_core.checkpoint import checkpoint_info

    fake = {"dev": generate(Recipe(4, 30), 6, seed=1), "lra": generate(Recipe(40, 60), 3, seed=2)}

    def load_split(name: str, cache_dir=None, n=None, progress=False):
        return fake[name][:n]

    monkeypatch.setattr(gen, "load_split", load_split)
    weights = (ckpt / WEIGHTS_FILE).read_bytes()
    args = ["--checkpoint", str(ckpt), "--splits", "dev,lra", "--no-progress", "--record"]
    assert ev.main([*args, "--limit", "5", "--alignment", "kbest"]) == 0
    metrics = checkpoint_info(ckpt).metadata["metrics"]
    assert set(metrics) == {"dev", "lra"}
    assert metrics["dev"]["n"] == 5 and metrics["lra"]["n"] == 3
    assert metrics["dev"]["limit"] == 5 and metrics["dev"]["settings"] == {"alignment": "kbest"}
    assert 0.0 <= metrics["dev"]["accuracy"] <= 1.0
    assert checkpoint_info(ckpt).metadata["notes"] == "eval test"  # the rest is kept
    from safetensors.torch import load

    before, after = load(weights), load((ckpt / WEIGHTS_FILE).read_bytes())
    assert all(torch.equal(before[k], after[k]) for k in before)
    # A run's last/ (with training state) is not rewritten: one sentence, nothing changed.
    last = save_checkpoint(tmp_path / "last", build_model(TINY), {}, resume_state={"step": 1})
    capsys.readouterr()
    assert ev.main(["--checkpoint", str(last), "--splits", "dev", "--record", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds a run's training state" in err and len(err.strip().splitlines()) == 1
    assert (
        "metrics" not in checkpoint_info(last).metadata
        or not checkpoint_info(last).metadata["metrics"]
    )
