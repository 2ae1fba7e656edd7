"""``python -m rir_core.report``: the model card's figures, and one sentence for each bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rir_core import report

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "pretrained" / "training_run"
EVAL = REPO / "docs" / "model_card_eval.json"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rir_core.report", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_figures_are_written_from_a_run_and_an_evaluation(tmp_path):
    result = _cli("--run", str(RUN), "--eval", str(EVAL), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("training_curve.png", "accuracy_vs_length.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000  # axes, curves and labels, not an empty canvas


def test_length_curves_follow_the_evaluation_buckets():
    curves = report._length_curves(EVAL)
    data = json.loads(EVAL.read_text())
    assert set(curves) == set(data["splits"])
    for name, pts in curves.items():
        buckets = data["splits"][name]["buckets"]
        expected = sorted(
            ((int(k.split("-")[0]) + int(k.split("-")[1])) / 2, b["accuracy"])
            for k, b in buckets.items()
            if b["n"] >= 10
        )
        assert pts == expected
        assert [x for x, _ in pts] == sorted(x for x, _ in pts)


def _copy_run(tmp_path: Path, extra_lines: list[str]) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(RUN / "log.jsonl", run / "log.jsonl")
    with open(run / "log.jsonl", "a") as f:
        for line in extra_lines:
            f.write(line + "\n")
    return run


def test_foreign_and_cut_log_lines_are_skipped(tmp_path):
    run = _copy_run(
        tmp_path,
        [
            '{"event": "step", "step": "x", "loss": 1.0}',  # a step that is not a number
            '{"event": "step", "step": 999999}',  # no loss: another tool's line
            '{"event": "eval", "step": 999999, "dev_accuracy": null}',
            '["a list"]',
            '{"event": "step", "st',  # cut by a crash
        ],
    )
    with open(run / "log.jsonl", "ab") as f:
        f.write(b'{"event": "step", "step": 1000000, "loss": \xff\xfe}\n')  # damaged bytes
    steps, evals = report.read_log(run / "log.jsonl")
    assert 1000000 not in {s["step"] for s in steps}
    assert all(isinstance(s["step"], int) for s in steps)
    result = _cli("--run", str(run), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "training_curve.png").is_file()


@pytest.mark.parametrize(
    "content, expected",
    [
        ("garbage", "is not valid JSON (line 1, column 1"),
        (b"\xff\xfe{", "is not a text file (not UTF-8)"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply to be read"),
        ("[1, 2]", "has no 'splits'"),
        ('{"splits": {"dev": {"accuracy": 0.9}}}', "split 'dev' has no per-length 'buckets'"),
        (
            '{"splits": {"dev": {"buckets": {"a-b": {"n": 20, "accuracy": 0.5}}}}}',
            "split 'dev', bucket 'a-b' is not a length range",
        ),
        (
            '{"splits": {"dev": {"buckets": {"0-100": {"accuracy": 0.5}}}}}',
            "split 'dev', bucket '0-100' is not a length range with 'n' and 'accuracy'",
        ),
    ],
    ids=["not-json", "not-utf8", "too-deep", "no-splits", "no-buckets", "bad-range", "no-n"],
)
def test_a_bad_evaluation_file_gets_one_sentence_and_nothing_is_written(
    tmp_path, content, expected
):
    bad = tmp_path / "eval.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    out = tmp_path / "out"
    result = _cli("--run", str(RUN), "--eval", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m rir_core.report: error: ")
    assert str(bad) in lines[0] and expected in lines[0]
    assert not out.exists()


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    result = _cli("--run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"python -m rir_core.report: error: {tmp_path / 'nowhere'} is not a training run: "
        "it has no log.jsonl."
    )


def test_a_log_without_steps_is_named(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"event": "start"}\n')
    result = _cli("--run", str(run), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"{run / 'log.jsonl'} has no training steps.")


def test_an_output_folder_that_cannot_be_made_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _cli("--run", str(RUN), "--out", str(blocker / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(
        f"python -m rir_core.report: error: cannot read or write {blocker / 'out'}: "
    )
