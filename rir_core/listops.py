"""The ListOps language: tokenizer, parser, evaluator and printer.

A ListOps expression is a digit ``0``-``9`` or an operator applied to one or more expressions::

    [MAX 2 9 [MIN 4 7 ] 0 ]          ->  9

Operators: ``MIN``, ``MAX``, ``MED`` (the median; for an even count the mean of the two middle
values, truncated) and ``SM`` (sum modulo 10).

What the parser accepts beyond the canonical form ``[MAX 2 9 ]``:

- a ``]`` glued to the digit before it (``[MAX 2 9]``) and any whitespace between tokens;
- operators in any case (``[max 2 9]``), canonicalised to upper case;
- a bare digit as a whole expression (``7``);
- the round parentheses ``(`` and ``)`` that the original data files write around binary-tree
  constituents; they carry no information and are dropped.

Every malformed input raises :class:`ListOpsSyntaxError` (a ``ValueError``) with a one-sentence
message and ``.position``, the 0-based character offset of the problem.

Nothing here recurses in Python: parsing, evaluation, printing and depth all use explicit
stacks, so an expression nested 10,000 levels deep works (with ``max_tokens`` raised).

Two kinds of position are kept on every node of the tree:

- the character span ``[start, end)`` in the original text, and
- the token span ``[first, last)`` over the canonical token list (parentheses excluded), the
  indices that the model and the trace use.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rir_core.vocab import CLOSE, DIGITS, OPERATORS

#: Default limit on the number of canonical tokens :func:`parse` accepts.
DEFAULT_MAX_TOKENS = 5000

#: Operator names without the bracket, in vocabulary order.
OPERATOR_NAMES: tuple[str, ...] = tuple(op[1:] for op in OPERATORS)

_DIGIT_SET = frozenset(DIGITS)
_OPERATOR_SET = frozenset(OPERATORS)

# One raw token: an opening bracket with whatever sticks to it, a closing bracket, a
# parenthesis, or a run of other non-space characters. Whitespace matches nothing and is skipped.
_RAW_TOKEN = re.compile(r"\[[^\s\[\]()]*|\]|[()]|[^\s\[\]()]+")

# Longest piece of an unknown token quoted in an error message.
_QUOTE_LIMIT = 20


class ListOpsSyntaxError(ValueError):
    """A malformed ListOps expression.

    Attributes:
        position: 0-based character offset of the problem in the input text.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def _quote(text: str) -> str:
    """Quote a token for an error message, shortening very long ones."""
    if len(text) > _QUOTE_LIMIT:
        text = text[:_QUOTE_LIMIT] + "..."
    return repr(text)


# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class Token:
    """One canonical token and where it sits in the original text.

    Attributes:
        text: canonical spelling (``"[MAX"``, ``"]"`` or a digit).
        start: character offset of its first character.
        end: character offset one past its last character.
    """

    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into canonical tokens, dropping whitespace and ``( )``.

    Only the spelling of each token is checked here, not the structure.

    Raises:
        ListOpsSyntaxError: on a token that is not an operator, ``]`` or a single digit.
    """
    result: list[Token] = []
    for match in _RAW_TOKEN.finditer(text):
        raw = match.group()
        if raw == "(" or raw == ")":
            continue
        if raw == CLOSE or raw in _DIGIT_SET:
            canonical = raw
        else:
            canonical = raw.upper()
            if canonical not in _OPERATOR_SET:
                start = match.start()
                raise ListOpsSyntaxError(f"unknown token {_quote(raw)} at character {start}", start)
        result.append(Token(canonical, match.start(), match.end()))
    return result


def tokens(text: str) -> list[str]:
    """The canonical token strings of ``text`` (see :func:`tokenize`); no structure check."""
    return [token.text for token in tokenize(text)]


# --------------------------------------------------------------------------------------------
# The expression tree


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class Expr:
    """A node of a parsed expression: a :class:`Digit` or an :class:`Op`.

    Attributes:
        start, end: character span ``[start, end)`` in the parsed text.
        first, last: token span ``[first, last)`` over the canonical token list.

    Equality is structural (kind, operator or value, spans, children) and computed without
    recursion, so comparing very deep trees is safe.
    """

    start: int
    end: int
    first: int
    last: int

    @property
    def char_span(self) -> tuple[int, int]:
        """``(start, end)``: the characters this node covers."""
        return (self.start, self.end)

    @property
    def token_span(self) -> tuple[int, int]:
        """``(first, last)``: the canonical tokens this node covers."""
        return (self.first, self.last)

    @property
    def is_leaf(self) -> bool:
        """True for a digit."""
        return isinstance(self, Digit)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expr):
            return NotImplemented
        stack: list[tuple[Expr, Expr]] = [(self, other)]
        while stack:
            a, b = stack.pop()
            if type(a) is not type(b) or (a.start, a.end, a.first, a.last) != (
                b.start,
                b.end,
                b.first,
                b.last,
            ):
                return False
            if isinstance(a, Digit):
                if a.value != b.value:  # type: ignore[attr-defined]
                    return False
            elif isinstance(a, Op) and isinstance(b, Op):
                if a.name != b.name or len(a.args) != len(b.args):
                    return False
                stack.extend(zip(a.args, b.args, strict=True))
        return True

    def __hash__(self) -> int:
        # Equal trees have equal root spans and kinds; hashing only those keeps this O(1).
        return hash((type(self).__name__, self.start, self.end, self.first, self.last))


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class Digit(Expr):
    """A digit leaf (one token)."""

    value: int

    def __repr__(self) -> str:
        return (
            f"Digit({self.value}, chars={self.start}:{self.end}, tokens={self.first}:{self.last})"
        )


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class Op(Expr):
    """An operator node ``[NAME arg ... ]``.

    Attributes:
        name: ``"MIN"``, ``"MAX"``, ``"MED"`` or ``"SM"``.
        args: the arguments, in order (at least one).
    """

    name: str
    args: tuple[Expr, ...] = field(default=())

    @property
    def token(self) -> str:
        """The opening token, e.g. ``"[MAX"``."""
        return "[" + self.name

    def __repr__(self) -> str:
        return (
            f"Op({self.token}, {len(self.args)} args, chars={self.start}:{self.end}, "
            f"tokens={self.first}:{self.last})"
        )


# --------------------------------------------------------------------------------------------
# Parsing


@dataclass
class _OpenOp:
    """An operator whose ``]`` has not been read yet (parser stack frame)."""

    token: Token
    index: int  # token index of the opening bracket
    args: list[Expr]


def parse(text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> Expr:
    """Parse one ListOps expression.

    Args:
        text: the expression, in any of the accepted spellings (see the module docstring).
        max_tokens: the most canonical tokens (parentheses not counted) accepted.

    Returns:
        The root of the tree, with character and token spans on every node.

    Raises:
        ListOpsSyntaxError: for an unknown token, an unclosed operator, a stray ``]``, an operator
            with no arguments, tokens after a complete expression, empty input, or more than
            ``max_tokens`` tokens.
    """
    toks = tokenize(text)
    if not toks:
        raise ListOpsSyntaxError("empty input: there is no expression to parse", 0)
    if len(toks) > max_tokens:
        over = toks[max_tokens].start
        raise ListOpsSyntaxError(
            f"input has {len(toks)} tokens, more than the limit of {max_tokens} "
            f"(token {max_tokens + 1} is at character {over})",
            over,
        )

    stack: list[_OpenOp] = []
    root: Expr | None = None
    for index, token in enumerate(toks):
        if root is not None:
            raise ListOpsSyntaxError(
                f"unexpected token {_quote(token.text)} at character {token.start} "
                "after a complete expression",
                token.start,
            )
        node: Expr
        if token.text in _DIGIT_SET:
            node = Digit(
                value=int(token.text),
                start=token.start,
                end=token.end,
                first=index,
                last=index + 1,
            )
        elif token.text == CLOSE:
            if not stack:
                raise ListOpsSyntaxError(
                    f"unexpected ']' at character {token.start}: no operator is open",
                    token.start,
                )
            frame = stack.pop()
            if not frame.args:
                opening = frame.token
                raise ListOpsSyntaxError(
                    f"operator '{opening.text}' at character {opening.start} has no arguments",
                    opening.start,
                )
            node = Op(
                name=frame.token.text[1:],
                args=tuple(frame.args),
                start=frame.token.start,
                end=token.end,
                first=frame.index,
                last=index + 1,
            )
        else:  # an operator opens a new frame
            stack.append(_OpenOp(token, index, []))
            continue
        if stack:
            stack[-1].args.append(node)
        else:
            root = node

    if stack:
        opening = stack[-1].token
        raise ListOpsSyntaxError(
            f"unclosed '{opening.text}' at character {opening.start}: a ']' is missing",
            opening.start,
        )
    assert root is not None  # non-empty input with an empty stack always completes a node
    return root


def _structure_ok(toks: Sequence[str]) -> bool:
    """True when canonical tokens form exactly one well-formed expression."""
    open_args: list[int] = []  # argument counts of the operators still open
    done = False
    for tok in toks:
        if done:
            return False
        if tok == CLOSE:
            if not open_args or open_args[-1] == 0:
                return False
            open_args.pop()
        elif tok in _OPERATOR_SET:
            open_args.append(0)
            continue
        if open_args:
            open_args[-1] += 1
        else:
            done = True
    return done


_CANONICAL = {t: t for t in (*OPERATORS, CLOSE, *DIGITS)}


def checked_tokens(text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[str]:
    """The canonical tokens of ``text``, after checking that it is one well-formed expression.

    Same result and same errors as ``parse`` (it falls back to :func:`parse` whenever its fast
    path is unsure), but an order of magnitude faster on clean input because it builds no tree.
    Used to read large data files.

    Raises:
        ListOpsSyntaxError: exactly as :func:`parse` would.
    """
    pieces = text.replace("]", " ] ").replace("(", " ").replace(")", " ").split()
    out: list[str] = []
    for piece in pieces:
        tok = _CANONICAL.get(piece)
        if tok is None:
            tok = _CANONICAL.get(piece.upper()) if piece[0] == "[" else None
            if tok is None:
                break
        out.append(tok)
    else:
        if len(out) <= max_tokens and _structure_ok(out):
            return out
    # Slow path: let the parser find (and locate) the problem.
    return list(iter_tokens(parse(text, max_tokens=max_tokens)))


# --------------------------------------------------------------------------------------------
# Walking, printing, evaluating


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of ``expr`` in pre-order (parent before children, children left to right)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Op):
            stack.extend(reversed(node.args))


def iter_tokens(expr: Expr) -> Iterator[str]:
    """The canonical tokens of ``expr`` in order."""
    stack: list[Expr | str] = [expr]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Digit):
            yield DIGITS[item.value]
        else:
            assert isinstance(item, Op)
            yield item.token
            stack.append(CLOSE)
            stack.extend(reversed(item.args))


def to_text(expr: Expr) -> str:
    """The canonical text of ``expr``: tokens joined by single spaces, e.g. ``[MAX 2 9 ]``."""
    return " ".join(iter_tokens(expr))


def apply_operator(name: str, values: Sequence[int]) -> int:
    """Apply operator ``name`` (``"MIN"``, ``"MAX"``, ``"MED"``, ``"SM"``) to digit values."""
    if not values:
        raise ValueError(f"operator {name} needs at least one argument")
    if name == "MIN":
        return min(values)
    if name == "MAX":
        return max(values)
    if name == "SM":
        return sum(values) % 10
    if name == "MED":
        ordered = sorted(values)
        mid = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[mid]
        # Even count: mean of the two middle values, truncated (all values are >= 0).
        return (ordered[mid - 1] + ordered[mid]) // 2
    raise ValueError(f"unknown operator {name!r}")


def evaluate_tokens(toks: Sequence[str]) -> int:
    """Value of an expression given as canonical tokens that are known to be well formed.

    A stack machine with no tree: fast enough to label millions of generated tokens. Use
    :func:`evaluate` for untrusted text.
    """
    frames: list[tuple[str, list[int]]] = []
    result = -1
    for tok in toks:
        if tok == CLOSE:
            name, values = frames.pop()
            value = apply_operator(name, values)
        elif tok in _DIGIT_SET:
            value = ord(tok) - 48
        else:
            frames.append((tok[1:], []))
            continue
        if frames:
            frames[-1][1].append(value)
        else:
            result = value
    if frames or result < 0:
        raise ValueError("tokens do not form one complete expression")
    return result


def evaluate(text_or_expr: str | Expr, max_tokens: int = DEFAULT_MAX_TOKENS) -> int:
    """The exact value (0-9) of an expression given as text or as a parsed tree.

    Raises:
        ListOpsSyntaxError: when text does not parse (``max_tokens`` as in :func:`parse`).
    """
    expr = parse(text_or_expr, max_tokens) if isinstance(text_or_expr, str) else text_or_expr
    return evaluate_tokens(list(iter_tokens(expr)))


def depth(expr: Expr) -> int:
    """Nesting depth of operators: 0 for a bare digit, 1 for ``[MAX 2 9 ]``."""
    best = 0
    stack: list[tuple[Expr, int]] = [(expr, 0)]
    while stack:
        node, above = stack.pop()  # ``above``: operators strictly above this node
        if isinstance(node, Op):
            best = max(best, above + 1)
            stack.extend((arg, above + 1) for arg in node.args)
    return best


def num_tokens(text_or_expr: str | Expr) -> int:
    """Number of canonical tokens (parentheses not counted)."""
    if isinstance(text_or_expr, str):
        return len(tokenize(text_or_expr))
    return text_or_expr.last - text_or_expr.first


@dataclass(frozen=True)
class ExprStats:
    """Summary numbers of one expression (see :func:`stats`)."""

    num_tokens: int
    depth: int
    num_operators: int
    num_digits: int
    max_args: int  # largest argument count of any operator (0 for a bare digit)
    operator_counts: dict[str, int]  # name -> how many times it occurs
    value: int


def stats(text_or_expr: str | Expr, max_tokens: int = DEFAULT_MAX_TOKENS) -> ExprStats:
    """Token count, depth, operator counts, widest operator and value of an expression."""
    expr = parse(text_or_expr, max_tokens) if isinstance(text_or_expr, str) else text_or_expr
    counts: Counter[str] = Counter()
    max_args = 0
    digits = 0
    for node in walk(expr):
        if isinstance(node, Op):
            counts[node.name] += 1
            max_args = max(max_args, len(node.args))
        else:
            digits += 1
    return ExprStats(
        num_tokens=num_tokens(expr),
        depth=depth(expr),
        num_operators=sum(counts.values()),
        num_digits=digits,
        max_args=max_args,
        operator_counts={name: counts.get(name, 0) for name in OPERATOR_NAMES},
        value=evaluate(expr),
    )
