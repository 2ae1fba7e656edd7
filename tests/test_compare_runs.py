"""tests/compare_runs.py: the A/B table of two runs' evaluations at equal steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare_runs  # noqa: E402


def _write_log(path: Path, evals: list[tuple[int, float, float, float | None]]) -> Path:
    lines = [json.dumps({"event": "start"}), json.dumps({"event": "step", "step": 1})]
    for step, unchunked, chunked, probe in evals:
        event = {
            "event": "eval",
            "step": step,
            "dev_groups": {
                "unchunked": {"accuracy": unchunked, "n": 10},
                "chunked": {"accuracy": chunked, "n": 5},
                "long": {"accuracy": None, "n": 0},
            },
        }
        if probe is not None:
            event["probe"] = {"split": "len_200_300", "accuracy": probe, "n": 100}
        lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_table_has_both_runs_at_the_common_steps(tmp_path, capsys):
    a = _write_log(tmp_path / "a.jsonl", [(100, 0.5, 0.25, 0.1), (200, 0.75, 0.5, 0.2)])
    run_b = tmp_path / "run_b"
    run_b.mkdir()
    _write_log(run_b / "log.jsonl", [(200, 0.9, 0.6, None), (300, 1.0, 0.7, 0.3)])
    assert compare_runs.main([str(a), str(run_b), "--names", "old,new"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| step | 200 |"  # the only step both evaluated
    assert "| old: dev never chunked | 75.0% |" in lines
    assert "| old: dev chunked | 50.0% |" in lines
    assert "| old: probe | 20.0% |" in lines
    assert "| new: dev chunked | 60.0% |" in lines
    assert "| new: probe | - |" in lines  # no probe at that evaluation


def test_given_steps_show_a_dash_where_a_run_did_not_evaluate(tmp_path, capsys):
    a = _write_log(tmp_path / "a.jsonl", [(100, 0.5, 0.25, 0.1)])
    b = _write_log(tmp_path / "b.jsonl", [(300, 1.0, 0.7, 0.3)])
    assert compare_runs.main([str(a), str(b), "--steps", "100,300"]) == 0
    out = capsys.readouterr().out
    assert "| step | 100 | 300 |" in out
    assert "| A: dev chunked | 25.0% | - |" in out
    assert "| B: dev chunked | - | 70.0% |" in out


def test_a_crash_cut_line_is_skipped_and_a_resume_wins(tmp_path, capsys):
    """A run killed mid-write leaves a cut last line; a resumed run logs a step again."""
    a = _write_log(tmp_path / "a.jsonl", [(100, 0.5, 0.25, 0.1)])
    b = _write_log(tmp_path / "b.jsonl", [(100, 0.5, 0.3, None), (100, 0.5, 0.4, None)])
    with b.open("a") as f:
        f.write('{"event": "eval", "step": 200, "dev_gr')
    assert compare_runs.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| step | 100 |" in out.splitlines()[0]
    assert "| B: dev chunked | 40.0% |" in out


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("missing", [], "no such log"),
        ("garbled", [], "no evaluation events"),
        ("no_evals", [], "no evaluation events"),
        ("disjoint", [], "no evaluation step in common"),
        ("ok", ["--steps", "1,x"], "--steps must be whole numbers"),
        ("ok", ["--names", "only"], "--names needs two names"),
    ],
)
def test_bad_input_is_one_sentence(tmp_path, capsys, setup, args, message):
    a = _write_log(tmp_path / "a.jsonl", [(100, 0.5, 0.25, 0.1)])
    b = tmp_path / "b.jsonl"
    if setup == "garbled":
        b.write_text('{"event": "start"}\nnot json\n5\n{"event": "ev')
    elif setup == "no_evals":
        b.write_text('{"event": "start"}\n')
    elif setup == "disjoint":
        _write_log(b, [(200, 0.5, 0.5, 0.5)])
    elif setup == "ok":
        _write_log(b, [(100, 0.5, 0.5, 0.5)])
    assert compare_runs.main([str(a), str(b), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("compare_runs: ") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_the_model_card_table_is_what_the_command_prints(capsys):
    """docs/model_card.md (session 11) shows this tool's table on the committed logs."""
    repo = Path(__file__).resolve().parents[1]
    card = (repo / "docs" / "model_card.md").read_text()
    start = card.index("`python tests/compare_runs.py ")
    command = card[start + 1 : card.index("`", start + 1)].split()
    assert compare_runs.main(command[2:]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    lines = card[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| step |"))
    shown = [line for line in lines[first:] if line.startswith("|")]
    shown = shown[: len(printed)]
    assert shown == printed
