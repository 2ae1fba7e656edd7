"""The ListOps vocabulary: token strings <-> integer ids.

Id 0 is padding (its embedding row stays zero). The order is fixed: checkpoints store the
vocabulary and loading refuses a checkpoint whose vocabulary differs.
"""

from __future__ import annotations

PAD = "<pad>"
OPERATORS: tuple[str, ...] = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
DIGITS: tuple[str, ...] = tuple(str(d) for d in range(10))

#: Every token, in id order. ``TOKENS[0]`` is padding.
TOKENS: tuple[str, ...] = (PAD, *OPERATORS, CLOSE, *DIGITS)
TOKEN_TO_ID: dict[str, int] = {t: i for i, t in enumerate(TOKENS)}
PAD_ID = 0
VOCAB_SIZE = len(TOKENS)  # V = 16
NUM_CLASSES = 10  # Y: the value of an expression, 0-9


def encode_tokens(tokens: list[str]) -> list[int]:
    """Map canonical token strings (as produced by the tokenizer) to ids."""
    return [TOKEN_TO_ID[t] for t in tokens]


def decode_ids(ids: list[int]) -> list[str]:
    """Map ids back to token strings, dropping padding."""
    return [TOKENS[i] for i in ids if i != PAD_ID]
