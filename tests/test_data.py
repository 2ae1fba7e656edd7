"""Tests of the data utilities (rir_core.data): TSV layouts, encoding and bucketing."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rir_core.data import (
    DataFormatError,
    Example,
    JSONFileError,
    bucket_batches,
    detect_layout,
    encode_batch,
    encode_examples,
    read_json,
    read_tsv,
    write_tsv,
)
from rir_core.vocab import PAD_ID, TOKEN_TO_ID

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# --------------------------------------------------------------------------------------------
# Reading the three layouts


def _pairs(examples: list[Example]) -> list[tuple[str, int]]:
    return [(ex.text, ex.label) for ex in examples]


def test_read_original_layout() -> None:
    path = FIXTURES / "original_small.tsv"
    assert detect_layout(path) == "original"
    assert _pairs(read_tsv(path, check_labels=True)) == [
        ("[MAX 2 9 ]", 9),
        ("[MIN 7 4 [SM 5 6 ] ]", 1),
        ("[MED 3 8 ]", 5),
        ("[SM 9 8 6 ]", 3),
    ]


def test_read_lra_layout() -> None:
    path = FIXTURES / "lra_small.tsv"
    assert detect_layout(path) == "lra"
    assert _pairs(read_tsv(path, check_labels=True)) == [
        ("[MAX 2 9 ]", 9),
        ("[MIN 4 [MAX 1 6 ] 7 ]", 4),
        ("[MED 1 2 3 4 ]", 2),
    ]


def test_read_our_layout() -> None:
    path = FIXTURES / "ours_small.tsv"
    assert detect_layout(path) == "ours"
    examples = read_tsv(path, check_labels=True)
    assert _pairs(examples) == [
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[SM 5 5 ]", 0),
        ("[MED 1 2 3 4 ]", 2),
        ("7", 7),
    ]
    assert examples[0].tokens == ("[MAX", "2", "9", "[MIN", "4", "7", "]", "0", "]")


def test_windows_line_endings_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "crlf.tsv"
    path.write_bytes(b"Source\tTarget\r\n[max 1 2]\t2\r\n\r\n[SM 3 4 ]\t7\r\n")
    assert _pairs(read_tsv(path, check_labels=True)) == [("[MAX 1 2 ]", 2), ("[SM 3 4 ]", 7)]
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert read_tsv(empty) == [] and detect_layout(empty) == "ours"


@pytest.mark.parametrize(
    ("name", "line", "words"),
    [
        ("bad_label.tsv", 2, "label 'x' is not a digit 0-9"),
        ("bad_expr.tsv", 3, "malformed expression (unclosed '[SM' at character 0"),
        ("bad_columns.tsv", 1, "expected 2 tab-separated columns, found 3"),
        ("bad_lra_token.tsv", 3, "malformed expression (unknown token 'FOO' at character 7)"),
    ],
)
def test_bad_rows_name_file_and_line(name: str, line: int, words: str) -> None:
    path = FIXTURES / name
    with pytest.raises(DataFormatError) as info:
        read_tsv(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line {line}: ")
    assert words in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_wrong_label_only_with_check_labels() -> None:
    path = FIXTURES / "wrong_label.tsv"
    assert len(read_tsv(path)) == 2
    with pytest.raises(DataFormatError, match=r"line 2: label 4 differs from .* value 1"):
        read_tsv(path, check_labels=True)


def test_too_long_expression_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "long.tsv"
    path.write_text("1\t[SM " + "1 " * 11 + "]\n")
    with pytest.raises(DataFormatError, match=r"line 1: .*13 tokens, more than the limit of 10"):
        read_tsv(path, max_tokens=10)
    assert len(read_tsv(path, max_tokens=13)) == 1


# --------------------------------------------------------------------------------------------
# Writing


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    examples = [Example.from_text("[max 1 [MIN 4 5]]"), Example.from_text("3"), Example(("5",), 5)]
    assert examples[0].text == "[MAX 1 [MIN 4 5 ] ]" and examples[0].label == 4
    assert len(examples[0]) == 7
    path = tmp_path / "deep" / "folder" / "out.tsv"
    write_tsv(path, examples)
    assert path.read_text() == "4\t[MAX 1 [MIN 4 5 ] ]\n3\t3\n5\t5\n"
    assert read_tsv(path) == examples
    assert [p.name for p in path.parent.iterdir()] == ["out.tsv"]  # no temporary file left
    write_tsv(path, examples[:1])  # overwrite in place
    assert read_tsv(path) == examples[:1]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "keep.tsv"
    write_tsv(path, [Example.from_text("[SM 1 2 ]")])

    def broken() -> object:
        yield Example.from_text("[SM 3 4 ]")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_tsv(path, broken())  # type: ignore[arg-type]
    assert path.read_text() == "3\t[SM 1 2 ]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tsv"]


# --------------------------------------------------------------------------------------------
# Encoding


def test_encode_batch_pads_on_the_right() -> None:
    ids, mask = encode_batch([["[MAX", "2", "9", "]"], ["7"], []])
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    assert ids.shape == mask.shape == (3, 4)
    assert ids[0].tolist() == [TOKEN_TO_ID[t] for t in ("[MAX", "2", "9", "]")]
    assert ids[1].tolist() == [TOKEN_TO_ID["7"], PAD_ID, PAD_ID, PAD_ID]
    assert ids[2].tolist() == [PAD_ID] * 4
    assert mask.tolist() == [[True] * 4, [True, False, False, False], [False] * 4]
    assert (ids[~mask] == PAD_ID).all() and (ids[mask] != PAD_ID).all()


def test_encode_batch_edge_cases() -> None:
    ids, mask = encode_batch([])
    assert ids.shape == mask.shape == (0, 0)
    with pytest.raises(ValueError, match=r"token '\[max' of sequence 1"):
        encode_batch([["1"], ["[max", "1", "]"]])


def test_encode_examples() -> None:
    examples = [Example.from_text("[SM 5 6 ]"), Example.from_text("4")]
    ids, mask, labels = encode_examples(examples)
    assert ids.shape == (2, 4) and mask.sum().item() == 5
    assert labels.tolist() == [1, 4] and labels.dtype == torch.long


# --------------------------------------------------------------------------------------------
# Length-bucketed batching


LENGTHS = [5, 3, 9, 3, 7, 5, 5, 1, 12, 3, 8, 5, 2]


@pytest.mark.parametrize("make_rng", [lambda s: random.Random(s), np.random.default_rng])
def test_bucket_batches_partition_and_sort(make_rng: object) -> None:
    batches = bucket_batches(LENGTHS, 4, make_rng(0))  # type: ignore[operator]
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(LENGTHS)))
    assert sorted(len(b) for b in batches) == [1, 4, 4, 4]
    # Batches hold consecutive runs of the length order: their length ranges do not overlap.
    ranges = sorted((min(LENGTHS[i] for i in b), max(LENGTHS[i] for i in b)) for b in batches)
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert hi <= lo
    # Deterministic for a seed; another seed reorders.
    assert bucket_batches(LENGTHS, 4, make_rng(0)) == batches  # type: ignore[operator]
    others = [bucket_batches(LENGTHS, 4, make_rng(s)) for s in range(1, 6)]  # type: ignore[operator]
    assert any(o != batches for o in others)


def test_bucket_batches_without_shuffle() -> None:
    batches = bucket_batches(LENGTHS, 5, shuffle=False)
    assert batches == [[7, 12, 1, 3, 9], [0, 5, 6, 11, 4], [10, 2, 8]]
    assert bucket_batches([], 3, random.Random(0)) == []


def test_bucket_batches_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        bucket_batches(LENGTHS, 0, random.Random(0))
    with pytest.raises(ValueError, match="rng"):
        bucket_batches(LENGTHS, 2)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{oops", "is not valid JSON (line 1, column 2"),
        (b"\xff\xfe{", "is not a text file (not UTF-8)"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply to be read"),
        ("[NaN]", "is not valid JSON (NaN is not a JSON number)"),
        ("1" * 5_000, "is not valid JSON (Exceeds the limit"),
    ],
)
def test_read_json_turns_every_bad_file_into_one_sentence(tmp_path, content, expected) -> None:
    path = tmp_path / "x.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(JSONFileError) as err:
        read_json(path, "some file")
    message = str(err.value)
    assert message.startswith(f"some file {path} {expected}"), message
    assert "\n" not in message


def test_read_json_reads_json_and_lets_infinity_through_when_asked(tmp_path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"best": -Infinity, "steps": [1, 2]}')
    assert read_json(path, "state", strict=False) == {"best": float("-inf"), "steps": [1, 2]}
    with pytest.raises(JSONFileError, match="Infinity is not a JSON number"):
        read_json(path, "state")
    with pytest.raises(JSONFileError, match="does not exist"):
        read_json(tmp_path / "none.json", "state")
    with pytest.raises(JSONFileError, match="is a folder, not a file"):
        read_json(tmp_path, "state")
