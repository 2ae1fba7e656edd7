"""tests/near_iid_report.py: length statistics of near-IID sets, a file against our draws."""

from __future__ import annotations

from pathlib import Path

import pytest
from near_iid_report import main, row

import rir_core.generate as gen
from rir_core.data import Example
from rir_core.generate import Recipe, SplitSpec


def ex(text: str) -> Example:
    return Example(tuple(text.split()), 0)


def test_row_counts_lengths_and_depth() -> None:
    examples = [
        ex("[MAX 2 9 ]"),  # 4 tokens, depth 1
        ex("[MIN 1 [SM 2 3 ] ]"),  # 7 tokens, depth 2
        ex("[MED " + "1 " * 43 + "]"),  # 45 tokens, depth 1
        ex("[SM " + "[MAX 1 2 ] " * 25 + "]"),  # 102 tokens, depth 2
    ]
    n, median, chunked, long_, short, depth = row(examples)
    assert (n, median, chunked, long_, short, depth) == (4, 26.0, 0.5, 0.25, 0.25, 1.5)
    with pytest.raises(ValueError):
        row([])


@pytest.fixture
def tiny_iid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIR_DATA_CACHE", str(tmp_path / "cache"))
    spec = SplitSpec("test_iid", Recipe(2, 40), 50, seed=3, pool=500)
    monkeypatch.setitem(gen.SPLITS, "test_iid", spec)


@pytest.mark.usefixtures("tiny_iid")
def test_a_file_against_the_split_and_the_first_draws(tmp_path: Path, capsys) -> None:
    f = tmp_path / "orig.tsv"
    f.write_text("9\t( ( [MAX 2 ) 9 ) ] )\n3\t( ( ( [MIN 3 ) 4 ) 5 ) ] )\n")
    assert main([str(f)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["set", "rows"]
    assert lines[1].split()[:3] == [str(f), "2", "4.5"]  # the parentheses are dropped
    assert lines[2].startswith("test_iid (50 of 500 distinct)") and " 50 " in lines[2]
    assert lines[3].startswith("first 50 distinct draws")


@pytest.mark.usefixtures("tiny_iid")
def test_an_unreadable_file_gets_one_sentence(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("x\t[MAX 2 9 ]\n")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "\n" not in err
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert main([str(empty)]) == 2
    assert "has no rows" in capsys.readouterr().err
    assert main([str(tmp_path / "none.tsv")]) == 2
    assert "none.tsv" in capsys.readouterr().err
