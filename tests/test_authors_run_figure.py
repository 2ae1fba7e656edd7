"""tests/authors_run_figure.py reads evals.jsonl and draws it, or says why not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from authors_run_figure import COMPOSITION_SERIES, DEV_SERIES, main, read_epochs, series

EVALS = Path(__file__).resolve().parents[1] / "pretrained" / "authors_code_run" / "evals.jsonl"


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_epochs_are_sorted_and_missing_measurements_are_left_out(tmp_path: Path) -> None:
    f = write(
        tmp_path / "e.jsonl",
        [
            {"epochs": 3, "probe": {"accuracy": 0.5}, "sdepth": {"all": {"accuracy": 0.6}}},
            {"epochs": 1, "probe": {"accuracy": 0.25}},
            {"epochs": 2, "probe": {"accuracy": True}},  # not a number: skipped
        ],
    )
    records = read_epochs(f)
    assert [r["epochs"] for r in records] == [1, 2, 3]
    assert series(records, ("probe", "accuracy")) == ([1, 3], [0.25, 0.5])
    assert series(records, ("sdepth", "all", "accuracy")) == ([3], [0.6])
    assert series(records, ("sdepth", "all", "whole")) == ([], [])


def test_the_committed_run_has_every_series_it_draws() -> None:
    records = read_epochs(EVALS)
    for _, keys, _ in (*DEV_SERIES, *COMPOSITION_SERIES):
        xs, ys = series(records, keys)
        assert len(xs) >= 10, keys
        assert all(0.0 <= y <= 1.0 for y in ys), keys


def test_it_draws_a_png(tmp_path: Path, capsys) -> None:
    out = tmp_path / "fig" / "run.png"
    assert main([str(EVALS), str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == str(out)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"epochs": 1}\nnot json\n', "line 2: not a readable JSON object"),
        ('{"epoch": 1}\n', "line 1: no whole number of 'epochs'"),
        ('{"epochs": 1.5}\n', "line 1: no whole number of 'epochs'"),
        ("[" * 100_000 + "]" * 100_000 + "\n", "line 1: not a readable JSON object"),
        ('{"epochs": ' + "9" * 5000 + "}\n", "line 1: not a readable JSON object"),
        ('{"epochs": 1}\n{"epochs": 1}\n', "has an epoch twice"),
        ("\n\n", "has no epochs"),
    ],
)
def test_a_bad_file_gets_one_sentence_and_no_figure(
    tmp_path: Path, capsys, content: str, says: str
) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text(content)
    out = tmp_path / "run.png"
    assert main([str(f), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and str(f) in err and "\n" not in err
    assert not out.exists()


def test_a_missing_file_and_a_wrong_suffix(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "none.jsonl"), str(tmp_path / "a.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(EVALS), str(tmp_path / "a.jpg")])
    assert "does not end in .png" in capsys.readouterr().err
