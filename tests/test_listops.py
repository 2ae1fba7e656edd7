"""Tests of the ListOps tokenizer, parser, evaluator and printer (rir_core.listops)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rir_core.listops import (
    Digit,
    ListOpsSyntaxError,
    Op,
    apply_operator,
    checked_tokens,
    depth,
    evaluate,
    evaluate_tokens,
    iter_tokens,
    num_tokens,
    parse,
    stats,
    to_text,
    tokenize,
    tokens,
    walk,
)

# --------------------------------------------------------------------------------------------
# Evaluation by hand


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        ("[MIN 3 1 2 ]", 1),
        ("[MAX 3 1 2 ]", 3),
        ("[MED 3 1 2 ]", 2),
        ("[SM 9 8 7 ]", 4),  # 24 mod 10
        ("[SM 5 5 ]", 0),  # wraps to 0
        ("[SM 9 9 9 9 9 9 9 9 9 9 9 ]", 9),  # 99 mod 10
        ("[MED 1 2 3 4 ]", 2),  # even count: (2 + 3) / 2 truncated
        ("[MED 1 2 ]", 1),
        ("[MED 3 8 ]", 5),  # (3 + 8) / 2 = 5.5 -> 5
        ("[MED 9 0 9 0 ]", 4),  # unsorted input, middle values 0 and 9
        ("[MED 7 ]", 7),
        ("[MIN 6 ]", 6),
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[SM [MAX 1 9 ] [MIN 5 6 ] [MED 2 4 8 ] ]", 8),  # 9 + 5 + 4 = 18
        ("[MIN [MAX 0 1 ] [SM 3 4 ] [MED 9 8 1 0 ] ]", 1),  # min(1, 7, 4)
        ("[MED [SM 9 2 ] [MAX 0 0 ] 5 ]", 1),  # median of 1, 0, 5
    ],
)
def test_evaluate_by_hand(text: str, value: int) -> None:
    assert evaluate(text) == value
    assert evaluate(parse(text)) == value
    assert evaluate_tokens(tokens(text)) == value


def test_apply_operator_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        apply_operator("MAX", [])
    with pytest.raises(ValueError):
        apply_operator("FIRST", [1, 2])


# --------------------------------------------------------------------------------------------
# Tokens and spans


def test_spans_of_canonical_text() -> None:
    text = "[MAX 2 9 [MIN 4 7 ] 0 ]"
    root = parse(text)
    assert isinstance(root, Op)
    assert root.name == "MAX" and root.token == "[MAX"
    assert root.char_span == (0, len(text)) and root.token_span == (0, 9)
    two, nine, inner, zero = root.args
    assert isinstance(two, Digit) and two.value == 2
    assert two.char_span == (5, 6) and two.token_span == (1, 2)
    assert nine.token_span == (2, 3)
    assert isinstance(inner, Op) and inner.name == "MIN"
    assert inner.char_span == (9, 19) and inner.token_span == (3, 7)
    assert text[inner.start : inner.end] == "[MIN 4 7 ]"
    assert zero.char_span == (20, 21) and zero.token_span == (7, 8)
    # Token spans index the canonical token list.
    toks = tokens(text)
    assert toks[inner.first : inner.last] == ["[MIN", "4", "7", "]"]


def test_tokenize_gives_canonical_strings_and_spans() -> None:
    result = tokenize("  [max 2\t9]")
    assert [t.text for t in result] == ["[MAX", "2", "9", "]"]
    assert [(t.start, t.end) for t in result] == [(2, 6), (7, 8), (9, 10), (10, 11)]


def test_glued_bracket_lower_case_and_whitespace() -> None:
    assert to_text(parse("[MAX 2 9]")) == "[MAX 2 9 ]"
    assert to_text(parse("[max 2 [Sm 3 4]]")) == "[MAX 2 [SM 3 4 ] ]"
    assert to_text(parse("\n [MED\t1   2\n3 ]  ")) == "[MED 1 2 3 ]"
    glued = parse("[MAX 2 9]")
    assert isinstance(glued, Op)
    assert glued.args[1].char_span == (7, 8)
    assert glued.char_span == (0, 9)


def test_parentheses_are_dropped() -> None:
    text = "( ( ( [MAX 2 ) 9 ) ] )"
    root = parse(text)
    assert to_text(root) == "[MAX 2 9 ]"
    assert root.token_span == (0, 4)
    assert root.char_span == (text.index("[MAX"), text.index("]") + 1)
    assert tokens(text) == ["[MAX", "2", "9", "]"]
    assert evaluate("( ( ( ( [MIN 7 ) 4 ) ( ( ( [SM 5 ) 6 ) ] ) ) ] )") == 1


def test_bare_digit() -> None:
    root = parse(" 4 ")
    assert isinstance(root, Digit) and root.value == 4
    assert root.char_span == (1, 2) and root.token_span == (0, 1)
    assert depth(root) == 0 and num_tokens(root) == 1 and to_text(root) == "4"


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("[MAX 2 FOO ]", 7, "unknown token 'FOO' at character 7"),
        ("[MAX 2 12 ]", 7, "unknown token '12'"),
        ("[FIRST 1 2 ]", 0, "unknown token '[FIRST'"),
        ("[ MAX 1 2 ]", 0, "unknown token '['"),
        ("[MAX2 1 ]", 0, "unknown token '[MAX2'"),
        ("  [MAX 2 [MIN 3 4 ]", 2, "unclosed '[MAX' at character 2"),
        ("[SM 1 [MIN 3", 6, "unclosed '[MIN'"),
        ("  ] 1", 2, "unexpected ']' at character 2"),
        ("[MAX ]", 0, "operator '[MAX' at character 0 has no arguments"),
        ("[SM 1 [MIN ] ]", 6, "'[MIN' at character 6 has no arguments"),
        ("[MAX 1 2 ] 3", 11, "unexpected token '3' at character 11 after a complete"),
        ("[MAX 1 2 ] ]", 11, "after a complete expression"),
        ("1 2", 2, "after a complete expression"),
        ("", 0, "empty input"),
        ("   \n", 0, "empty input"),
        ("( )", 0, "empty input"),
    ],
)
def test_syntax_errors(text: str, position: int, words: str) -> None:
    with pytest.raises(ListOpsSyntaxError) as info:
        parse(text)
    assert info.value.position == position
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)
    # The fast token checker reports exactly the same error.
    with pytest.raises(ListOpsSyntaxError) as again:
        checked_tokens(text)
    assert (again.value.position, str(again.value)) == (position, str(info.value))


def test_length_limit_counts_tokens() -> None:
    text = "[SM " + "1 " * 10 + "]"  # 12 tokens
    with pytest.raises(ListOpsSyntaxError) as info:
        parse(text, max_tokens=5)
    message = str(info.value)
    assert "12 tokens" in message and "limit of 5" in message
    assert info.value.position == 12  # the sixth token, the first over the limit
    assert num_tokens(parse(text, max_tokens=12)) == 12
    # Parentheses do not count.
    assert num_tokens(parse("( " * 20 + "[MAX 1 2 ]" + " )" * 20, max_tokens=4)) == 4


def test_long_unknown_token_is_shortened() -> None:
    with pytest.raises(ListOpsSyntaxError) as info:
        parse("x" * 500)
    assert len(str(info.value)) < 80


# --------------------------------------------------------------------------------------------
# Depth, printing, deep nesting


def test_depth_and_stats() -> None:
    root = parse("[MAX 2 9 [MIN 4 [SM 1 1 1 1 1 1 ] ] 0 ]")
    assert depth(root) == 3
    s = stats(root)
    assert s.num_tokens == 16
    assert s.depth == 3
    assert s.num_operators == 3
    assert s.num_digits == 10
    assert s.max_args == 6
    assert s.operator_counts == {"MIN": 1, "MAX": 1, "MED": 0, "SM": 1}
    assert s.value == 9
    assert stats("[max 1 2]").num_tokens == 4
    assert num_tokens("( [MAX 1 2 ] )") == 4
    assert [n.token_span for n in walk(root)][:3] == [(0, 16), (1, 2), (2, 3)]


def test_ten_thousand_levels_with_raised_limit() -> None:
    levels = 10_000
    text = "[SM 1 " * levels + "1" + " ]" * levels  # value (levels + 1) mod 10
    with pytest.raises(ListOpsSyntaxError, match="limit"):
        parse(text)
    limit = 3 * levels + 1
    root = parse(text, max_tokens=limit)
    assert depth(root) == levels
    assert evaluate(root) == (levels + 1) % 10
    assert evaluate(text, max_tokens=limit) == (levels + 1) % 10
    assert to_text(root) == text
    assert num_tokens(root) == limit
    assert root == parse(text, max_tokens=limit)  # structural equality without recursion
    assert root != parse(text.replace("1 ]", "2 ]", 1), max_tokens=limit)
    assert len(repr(root)) < 100
    assert checked_tokens(text, max_tokens=limit) == list(iter_tokens(root))
    assert stats(root).depth == levels


def test_equality_and_hash() -> None:
    a, b = parse("[MAX 1 2 ]"), parse("[MAX 1 2 ]")
    assert a == b and hash(a) == hash(b) and a is not b
    assert a != parse("[MAX 1 3 ]")
    assert a != parse("[MIN 1 2 ]")
    assert a != parse("[MAX 1 2]")  # same tree, different character spans
    assert a != "[MAX 1 2 ]"


# --------------------------------------------------------------------------------------------
# Properties


def _value(tree: object) -> int:
    """Independent recursive oracle over nested tuples (only for small trees)."""
    if isinstance(tree, int):
        return tree
    name, args = tree  # type: ignore[misc]
    values = sorted(_value(a) for a in args)
    if name == "MIN":
        return values[0]
    if name == "MAX":
        return values[-1]
    if name == "SM":
        return sum(values) % 10
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) // 2


def _canonical(tree: object) -> list[str]:
    if isinstance(tree, int):
        return [str(tree)]
    name, args = tree  # type: ignore[misc]
    out = ["[" + name]
    for arg in args:
        out.extend(_canonical(arg))
    return [*out, "]"]


trees = st.recursive(
    st.integers(0, 9),
    lambda children: st.tuples(
        st.sampled_from(["MIN", "MAX", "MED", "SM"]), st.lists(children, min_size=1, max_size=6)
    ),
    max_leaves=40,
)


@st.composite
def spelled(draw: st.DrawFn) -> tuple[object, str]:
    """A tree and one of its many accepted spellings."""
    tree = draw(trees)
    parts: list[str] = []
    for tok in _canonical(tree):
        if tok.startswith("[") and draw(st.booleans()):
            tok = draw(st.sampled_from([tok.lower(), tok.title(), tok]))
        glue = tok == "]" and parts and draw(st.booleans())
        if parts and not glue:
            parts.append(draw(st.sampled_from([" ", "  ", "\t", "\n", " ( ", " ) "])))
        parts.append(tok)
    return tree, draw(st.sampled_from(["", " ", "( "])) + "".join(parts)


@settings(max_examples=200, deadline=None)
@given(spelled())
def test_spellings_parse_to_the_canonical_tree(case: tuple[object, str]) -> None:
    tree, text = case
    root = parse(text)
    canonical = " ".join(_canonical(tree))
    assert to_text(root) == canonical
    assert evaluate(root) == _value(tree)
    assert checked_tokens(text) == canonical.split()
    # print -> parse -> print is stable, and spans point at the right text.
    assert to_text(parse(to_text(root))) == canonical
    toks = tokenize(text)
    for node in walk(root):
        assert toks[node.first].start == node.start
        assert toks[node.last - 1].end == node.end
    assert num_tokens(root) == len(canonical.split())


_SOUP = ["[MAX", "[min", "[MeD", "[SM", "[FOO", "[", "]", "(", ")", "1", "7", "12", "x", ""]


def _parse_or_error(text: str) -> None:
    try:
        root = parse(text)
    except ListOpsSyntaxError as err:
        assert 0 <= err.position <= len(text)
        assert str(err)
        with pytest.raises(ListOpsSyntaxError):
            checked_tokens(text)
    else:
        assert 0 <= evaluate(root) <= 9
        assert checked_tokens(text) == list(iter_tokens(root))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SOUP), max_size=25), st.sampled_from([" ", "", "\t "]))
def test_token_soup_gives_tree_or_syntax_error(soup: list[str], sep: str) -> None:
    _parse_or_error(sep.join(soup))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_gives_tree_or_syntax_error(text: str) -> None:
    _parse_or_error(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="[]() 0123456789MAXINEDSmaxined\t\n", max_size=60))
def test_random_listops_like_text_gives_tree_or_syntax_error(text: str) -> None:
    _parse_or_error(text)
