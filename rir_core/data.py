"""ListOps data: examples, TSV files, batch encoding and length-bucketed batching.

Three TSV layouts are read (``read_tsv`` tells them apart by itself):

- ``original`` (Nangia & Bowman 2018): ``label<TAB>expression``, the expression written with the
  binary-tree parentheses ``( )`` as extra tokens, which are dropped;
- ``lra`` (Long Range Arena): a header line ``Source<TAB>Target``, then ``expression<TAB>label``;
- ``ours``: ``label<TAB>expression`` with the canonical expression text (what ``write_tsv`` and
  the generator write).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rir_core.listops import DEFAULT_MAX_TOKENS, ListOpsSyntaxError, checked_tokens, evaluate_tokens
from rir_core.vocab import DIGITS, PAD_ID, TOKEN_TO_ID

LAYOUTS: tuple[str, ...] = ("original", "lra", "ours")
_LRA_HEADER = ("source", "target")


class DataFormatError(ValueError):
    """A data file that cannot be read; the message names the file and the line."""


class JSONFileError(ValueError):
    """A JSON file that cannot be read; the message is one sentence naming the file."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: str | os.PathLike[str], what: str, strict: bool = True) -> Any:
    """The JSON value in ``path``; anything else is a :class:`JSONFileError` whose one sentence
    starts with ``what`` (e.g. "config file") and names the file.

    Hostile files fail here with a sentence, never with Python's own exceptions: damaged bytes,
    a number with thousands of digits (``int`` refuses it with a plain ValueError), arrays
    nested 100,000 deep (the decoder raises RecursionError) and, with ``strict``, ``NaN`` /
    ``Infinity``, which are not JSON (``strict=False`` lets them through, for files that hold
    ``-inf`` on purpose).
    """
    where = f"{what} {path}"
    hooks: dict[str, Any] = {"parse_constant": _no_constant} if strict else {}
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle, **hooks)
    except FileNotFoundError:
        raise JSONFileError(f"{where} does not exist.") from None
    except IsADirectoryError:
        raise JSONFileError(f"{where} is a folder, not a file.") from None
    except UnicodeDecodeError:
        raise JSONFileError(f"{where} is not a text file (not UTF-8).") from None
    except OSError as err:
        raise JSONFileError(f"{where} cannot be read ({err.strerror or err}).") from None
    except json.JSONDecodeError as err:
        raise JSONFileError(
            f"{where} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})."
        ) from None
    except RecursionError:
        raise JSONFileError(f"{where} is nested too deeply to be read.") from None
    except ValueError as err:
        reason = str(err).split(":")[0].rstrip(".")
        raise JSONFileError(f"{where} is not valid JSON ({reason}).") from None


def cli_error(prog: str, err: BaseException) -> str:
    """The one line a command-line tool prints for ``err``: ``PROG: error: SENTENCE.``

    An ``OSError`` names its file and the system's reason; any other error is its own message,
    which in this package is already one sentence naming what is wrong and where.
    """
    if isinstance(err, OSError) and err.strerror:
        where = f" {err.filename}" if err.filename else ""
        return f"{prog}: error: cannot read or write{where}: {err.strerror}."
    return f"{prog}: error: {str(err).rstrip('.')}."


@dataclass(frozen=True)
class Example:
    """One labelled expression.

    Attributes:
        tokens: canonical tokens (parentheses dropped), e.g. ``("[MAX", "2", "9", "]")``.
        label: the value of the expression, 0-9.
    """

    tokens: tuple[str, ...]
    label: int

    @property
    def text(self) -> str:
        """Canonical text, tokens joined by single spaces."""
        return " ".join(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_text(cls, text: str, label: int | None = None) -> Example:
        """Parse ``text``; the label defaults to the expression's value."""
        toks = tuple(checked_tokens(text))
        return cls(toks, evaluate_tokens(toks) if label is None else label)


# --------------------------------------------------------------------------------------------
# Reading and writing


def _is_lra_header(line: str) -> bool:
    fields = tuple(f.strip().lower() for f in line.split("\t"))
    return fields == _LRA_HEADER


def detect_layout(path: str | os.PathLike[str]) -> str:
    """``"lra"``, ``"original"`` or ``"ours"`` (see the module docstring).

    A header ``Source<TAB>Target`` means LRA; otherwise a ``(`` in the first data line means
    the original files; anything else is ours. Original and ours are read the same way.
    """
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            if _is_lra_header(line):
                return "lra"
            return "original" if "(" in line else "ours"
    return "ours"


def _parse_label(raw: str, where: str) -> int:
    label = raw.strip()
    if label not in DIGITS:
        raise DataFormatError(f"{where}: label {label[:20]!r} is not a digit 0-9")
    return int(label)


def read_tsv(
    path: str | os.PathLike[str],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    check_labels: bool = False,
) -> list[Example]:
    """Read a ListOps TSV file in any of the three layouts.

    Blank lines are skipped. Every expression is checked with the parser.

    Args:
        path: the file.
        max_tokens: longest expression accepted (canonical tokens).
        check_labels: also check every label against the evaluated value.

    Raises:
        DataFormatError: naming the file and line of the first bad row (wrong column count,
            a label that is not 0-9, a malformed expression with the parser's message, or with
            ``check_labels`` a wrong label).
    """
    name = os.fspath(path)
    examples: list[Example] = []
    lra = False
    seen_data = False
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if not seen_data and not lra and _is_lra_header(line):
                lra = True
                continue
            seen_data = True
            where = f"{name}, line {lineno}"
            fields = line.split("\t")
            if len(fields) != 2:
                raise DataFormatError(
                    f"{where}: expected 2 tab-separated columns, found {len(fields)}"
                )
            raw_expr, raw_label = (fields[0], fields[1]) if lra else (fields[1], fields[0])
            label = _parse_label(raw_label, where)
            try:
                toks = tuple(checked_tokens(raw_expr, max_tokens=max_tokens))
            except ListOpsSyntaxError as err:
                raise DataFormatError(f"{where}: malformed expression ({err})") from err
            if check_labels:
                value = evaluate_tokens(toks)
                if value != label:
                    raise DataFormatError(
                        f"{where}: label {label} differs from the expression's value {value}"
                    )
            examples.append(Example(toks, label))
    return examples


def atomic_write_text(path: str | os.PathLike[str], lines: Iterable[str]) -> None:
    """Write ``lines`` (each without its newline) to ``path`` through a temporary file and a
    rename, so that readers never see a half-written file. Creates missing parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for line in lines:
                handle.write(line)
                handle.write("\n")
        os.chmod(tmp_name, 0o644)  # mkstemp makes the file private; data files are not
        os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def write_tsv(path: str | os.PathLike[str], examples: Iterable[Example]) -> None:
    """Write examples in our layout ``label<TAB>expression`` (atomically)."""
    atomic_write_text(path, (f"{ex.label}\t{ex.text}" for ex in examples))


# --------------------------------------------------------------------------------------------
# Tensors and batches


def encode_batch(token_lists: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded on the right, and the mask of real tokens.

    Args:
        token_lists: B lists of canonical tokens.

    Returns:
        ``(ids, mask)``: ``ids`` LongTensor (B, L) with ``PAD_ID`` (0) after each sequence,
        ``mask`` BoolTensor (B, L), True at real tokens; L is the longest length (0 if B is 0).

    Raises:
        ValueError: on a token outside the vocabulary.
    """
    width = max((len(toks) for toks in token_lists), default=0)
    ids = torch.full((len(token_lists), width), PAD_ID, dtype=torch.long)  # (B, L)
    mask = torch.zeros((len(token_lists), width), dtype=torch.bool)  # (B, L)
    for row, toks in enumerate(token_lists):
        try:
            encoded = [TOKEN_TO_ID[t] for t in toks]
        except KeyError as err:
            raise ValueError(
                f"token {err.args[0]!r} of sequence {row} is not in the vocabulary"
            ) from None
        if encoded:
            ids[row, : len(encoded)] = torch.tensor(encoded, dtype=torch.long)
            mask[row, : len(encoded)] = True
    return ids, mask


def encode_examples(
    examples: Sequence[Example],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids (B, L), mask (B, L), labels (B,))`` for a batch of examples."""
    ids, mask = encode_batch([ex.tokens for ex in examples])
    labels = torch.tensor([ex.label for ex in examples], dtype=torch.long)  # (B,)
    return ids, mask, labels


def mixed_bucket_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, batches_per_bucket: int = 5
) -> list[list[int]]:
    """The authors' batching (SPEC 7.1): shuffle, take buckets of ``batches_per_bucket`` x
    ``batch_size`` rows, sort each bucket by length (ties at random), cut it into batches and
    shuffle the batch order. A batch mixes the lengths of one fifth of a random bucket, so with
    the batch chunk rule its shorter rows are chunked beside its longest (short tails).

    The result depends only on the lengths and the generator's state.
    """
    if batch_size <= 0 or batches_per_bucket <= 0:
        raise ValueError("batch_size and batches_per_bucket must be positive")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * batches_per_bucket
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        bucket = order[start : start + span]
        ties = {i: rng.random() for i in bucket}
        bucket.sort(key=lambda i: (lengths[i], ties[i]))
        batches += [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
    rng.shuffle(batches)
    return batches


def bucket_batches(
    lengths: Sequence[int],
    batch_size: int,
    rng: random.Random | np.random.Generator | None = None,
    shuffle: bool = True,
) -> list[list[int]]:
    """Group example indices into batches of similar length.

    Indices are sorted by length (ties broken at random when shuffling), cut into consecutive
    batches of ``batch_size`` (the last may be smaller), and with ``shuffle`` the batch order is
    shuffled. The result depends only on the inputs and the generator's state.

    Args:
        lengths: length of each example.
        batch_size: examples per batch (> 0).
        rng: a seeded ``random.Random`` or ``numpy.random.Generator``; required with ``shuffle``.
        shuffle: random tie-breaking and batch order; without it, ties keep index order and
            batches go from shortest to longest.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    count = len(lengths)
    if shuffle:
        if rng is None:
            raise ValueError("bucket_batches needs an rng when shuffle is True")
        if isinstance(rng, np.random.Generator):
            ties = rng.random(count)
        else:
            ties = np.array([rng.random() for _ in range(count)], dtype=np.float64)
        order = np.lexsort((ties, np.asarray(lengths, dtype=np.int64))) if count else []
    else:
        order = sorted(range(count), key=lambda i: lengths[i])
    flat = [int(i) for i in order]
    batches = [flat[i : i + batch_size] for i in range(0, count, batch_size)]
    if shuffle:
        if isinstance(rng, np.random.Generator):
            batches = [batches[int(i)] for i in rng.permutation(len(batches))]
        else:
            assert rng is not None
            rng.shuffle(batches)
    return batches
