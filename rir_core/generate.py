"""ListOps data generator: the Nangia & Bowman (2018) recipe, sampled fast inside length windows.

The recipe
----------
A node is an operator (uniform over MIN, MAX, MED, SM) with probability ``p_op`` (0.25), else a
digit (uniform 0-9). An operator takes uniformly 2..``max_args`` arguments, each a fresh node one
level deeper. As in the original generators the root sits at depth 1 and a node at depth
``max_depth`` is forced to be a digit, so operators nest at most ``max_depth - 1`` deep. Whole
expressions of one token (a bare digit) are dropped, duplicates are removed, and a split keeps
only expressions whose token count lies in a window ``[min_tokens, max_tokens]``.

Why not rejection sampling
--------------------------
The recipe makes mostly tiny trees (median about 16 tokens), so drawing from it and keeping the
900-1,000-token ones needs millions of draws. Instead we sample *exactly the same conditional
distribution* directly, by dynamic programming over token counts:

1. Length tables (bottom-up). Let ``P_d(n)`` be the probability that a subtree rooted at depth
   ``d`` has ``n`` tokens (a digit is 1 token; an operator is 2 tokens, ``[OP`` and ``]``, plus
   its arguments), and ``C_d^(j)`` the ``j``-fold convolution of ``P_d`` (the length law of ``j``
   independent sibling subtrees). Then ``P_D = delta_1`` at the forced-leaf depth ``D`` and, for
   ``d < D``::

       P_d(1) = 1 - p_op
       P_d(n) = p_op * mean_{k=2..K} C_{d+1}^(k)(n - 2)        (n >= 2)

   Only lengths up to ``max_tokens`` are needed (a subtree is never longer than its parent), so
   all tables are exact after truncation. Values are float64 and stay far from underflow for
   every window used here (the builder refuses windows whose total probability underflows).
2. Sampling (top-down, explicit stack). Pick the root length ``n`` in the window with weight
   ``P_1(n)``. A node of required length 1 is a digit; longer nodes are operators (lengths 2 and
   3 are impossible). An operator node at depth ``d`` with length ``n`` draws its argument count
   ``k`` with weight ``C_{d+1}^(k)(n - 2)`` (the uniform prior cancels), then splits the
   remaining ``m = n - 2`` tokens sequentially: with ``j`` arguments left, the next one gets
   length ``a`` with weight ``P_{d+1}(a) * C_{d+1}^(j-1)(m - a)``; the last one takes the rest.
   Operator names and digits are drawn as in the recipe (they do not affect lengths).

Each step is Bayes' rule on the recipe, so this is exact conditional sampling given the window;
``tests/test_generate.py`` compares it statistically with plain rejection sampling
(:func:`sample_recipe`, the slow readable reference kept alongside).

Randomness
----------
Everything draws from an explicit ``numpy.random.Generator`` seeded per call
(``numpy.random.default_rng(seed)``), read through a buffered stream of uniforms; the global
RNGs are never touched. Generation keeps drawing until it has ``count`` distinct expressions, in
draw order, so with the same recipe and seed the first ``n`` examples of a run with ``count=N``
are exactly the examples of a run with ``count=n`` (without an ``exclude`` set).

The standard suite (:data:`SPLITS`)
-----------------------------------
=============  ===================================================  =======  =====
name           recipe (tokens, max args, max depth)                  count    seed
=============  ===================================================  =======  =====
train          2-100, 5 args, depth 20                               90,000   1
dev            2-100, 5 args, depth 20; none of train                1,000    2
test_iid       2-1000 (near-IID: the recipe, barely filtered) [1]    2,000    3
len_200_300    200-300, 5 args, depth 20                             2,000    4
len_500_600    500-600, 5 args, depth 20                             2,000    5
len_900_1000   900-1000, 5 args, depth 20                            2,000    6
args_10        100-1000, 10 args, depth 9                            2,000    7
args_15        100-1000, 15 args, depth 9                            2,000    8
lra            501-1999, 10 args, depth 10                           2,000    9
=============  ===================================================  =======  =====

[1] 2,000 chosen at random from 100,000 distinct draws, as the original near-IID test file was
(:attr:`SplitSpec.pool`); the other splits are their first ``count`` distinct draws.

:func:`load_split` generates a split once and caches it as TSV (our layout) under
``data_cache/`` at the repository root, or under ``$RIR_DATA_CACHE``; the file name carries a
hash of the recipe, count, seed, exclusions and :data:`GENERATOR_VERSION`.

Command line::

    python -m rir_core.generate --n N --min-tokens A --max-tokens B --seed S \\
        [--max-args 5] [--max-depth 20] [--p-op 0.25] --out FILE.tsv
    python -m rir_core.generate --split NAME --out FILE.tsv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rir_core.data import Example, read_tsv, write_tsv
from rir_core.listops import evaluate_tokens
from rir_core.vocab import CLOSE, DIGITS, OPERATORS

#: Bumped whenever the sampling procedure changes, so that cached splits are regenerated.
GENERATOR_VERSION = 1

#: Generation gives up after this many draws in a row that produced nothing new.
MAX_CONSECUTIVE_DUPLICATES = 20_000

#: Longest window the length tables support (their cost grows as max_tokens squared).
MAX_SUPPORTED_TOKENS = 10_000


@dataclass(frozen=True)
class Recipe:
    """The generator's parameters: the Nangia & Bowman recipe and a length window.

    Attributes:
        min_tokens: shortest expression kept (tokens; a bare digit, 1 token, is always dropped).
        max_tokens: longest expression kept.
        max_args: an operator takes 2..max_args arguments, uniformly.
        max_depth: nodes at this depth (root = 1) are forced to be digits.
        p_op: probability that a node above the forced depth is an operator.
    """

    min_tokens: int
    max_tokens: int
    max_args: int = 5
    max_depth: int = 20
    p_op: float = 0.25

    def __post_init__(self) -> None:
        if self.min_tokens < 1:
            raise ValueError(f"min_tokens must be at least 1, got {self.min_tokens}")
        if self.max_tokens < max(self.min_tokens, 2):
            raise ValueError(
                f"max_tokens ({self.max_tokens}) must be at least 2 and at least "
                f"min_tokens ({self.min_tokens})"
            )
        if self.max_args < 2:
            raise ValueError(f"max_args must be at least 2, got {self.max_args}")
        if self.max_depth < 2:
            raise ValueError(f"max_depth must be at least 2, got {self.max_depth}")
        if not 0.0 < self.p_op <= 1.0:
            raise ValueError(f"p_op must be in (0, 1], got {self.p_op}")

    @property
    def window(self) -> tuple[int, int]:
        """``(lo, hi)``: the token counts kept, bare digits excluded."""
        return (max(self.min_tokens, 2), self.max_tokens)


class UniformStream:
    """Uniform floats in [0, 1) from a numpy Generator, drawn in blocks for speed."""

    def __init__(self, rng: np.random.Generator, block: int = 8192) -> None:
        self._rng = rng
        self._block = block
        self._buffer: list[float] = []
        self._index = 0

    def __call__(self) -> float:
        if self._index == len(self._buffer):
            self._buffer = self._rng.random(self._block).tolist()
            self._index = 0
        value = self._buffer[self._index]
        self._index += 1
        return value


# --------------------------------------------------------------------------------------------
# The reference: plain recipe sampling (and rejection)


def sample_recipe(recipe: Recipe, uniform: Callable[[], float]) -> list[str] | None:
    """One draw of the unfiltered recipe; ``None`` as soon as it exceeds ``recipe.max_tokens``.

    The slow, readable reference that the DP sampler must agree with (stopping a draw early
    does not change which draws are kept).
    """
    out: list[str] = []
    stack: list[int | None] = [1]  # depths of nodes still to draw; None marks a pending "]"
    limit = recipe.max_tokens
    while stack:
        d = stack.pop()
        if d is None:
            out.append(CLOSE)
        elif d < recipe.max_depth and uniform() < recipe.p_op:
            out.append(OPERATORS[int(uniform() * 4)])
            k = 2 + int(uniform() * (recipe.max_args - 1))
            stack.append(None)
            stack.extend([d + 1] * k)
        else:
            out.append(DIGITS[int(uniform() * 10)])
        if len(out) > limit:
            return None
    return out


def sample_rejection(recipe: Recipe, uniform: Callable[[], float]) -> list[str]:
    """Draw the recipe until an expression falls in the window (slow for long windows)."""
    lo, hi = recipe.window
    while True:
        toks = sample_recipe(recipe, uniform)
        if toks is not None and lo <= len(toks) <= hi:
            return toks


# --------------------------------------------------------------------------------------------
# The fast sampler: length tables and top-down conditional sampling


class LengthTables:
    """The DP tables ``P_d(n)`` and ``C_d^(j)(n)`` of the module docstring.

    Attributes:
        P: (D + 2, L + 1) float64; ``P[d, n]`` for depths 1..D (row 0 and D + 1 unused).
        C: (D + 2, K + 1, L + 1) float64; ``C[d, j, n]``, ``j``-fold convolution of ``P[d]``.
    """

    def __init__(self, recipe: Recipe) -> None:
        if recipe.max_tokens > MAX_SUPPORTED_TOKENS:
            raise ValueError(
                f"max_tokens {recipe.max_tokens} is above the supported {MAX_SUPPORTED_TOKENS}"
            )
        self.recipe = recipe
        L, K, D = recipe.max_tokens, recipe.max_args, recipe.max_depth  # noqa: N806 (paper letters)
        P = np.zeros((D + 2, L + 1))  # noqa: N806
        C = np.zeros((D + 2, K + 1, L + 1))  # noqa: N806
        for d in range(D, 0, -1):
            if d == D:
                P[d, 1] = 1.0  # forced leaf
            else:
                P[d, 1] = 1.0 - recipe.p_op
                # Operator: 2 tokens plus k argument subtrees one level deeper.
                P[d, 2:] = recipe.p_op * C[d + 1, 2:, : L - 1].mean(axis=0)
            C[d, 0, 0] = 1.0
            for j in range(1, K + 1):
                C[d, j] = np.convolve(C[d, j - 1], P[d])[: L + 1]
        self.P = P
        self.C = C
        lo, hi = recipe.window
        weights = P[1, lo : hi + 1]
        total = float(weights.sum())
        if not total > 0.0 or not np.isfinite(total):
            raise ValueError(
                f"the recipe cannot produce expressions of {lo}-{hi} tokens "
                f"with max_args={K} and max_depth={D}"
            )
        self.window_probability = total  # P(lo <= length <= hi) under the unfiltered recipe
        self._root_cdf = np.cumsum(weights)
        self._lo = lo

    def sample_root_length(self, uniform: Callable[[], float]) -> int:
        """Root length ``n`` in the window, with weight ``P_1(n)``."""
        cdf = self._root_cdf
        index = int(np.searchsorted(cdf, uniform() * cdf[-1], side="right"))
        return self._lo + min(index, len(cdf) - 1)

    def sample_arg_count(self, child_depth: int, m: int, uniform: Callable[[], float]) -> int:
        """Argument count ``k`` of an operator whose arguments share ``m`` tokens."""
        row = self.C[child_depth, 2:, m]  # weights of k = 2..K
        target = uniform() * float(row.sum())
        acc = 0.0
        for offset, weight in enumerate(row.tolist()):
            acc += weight
            if acc > target and weight > 0.0:
                return 2 + offset
        return 2 + int(np.flatnonzero(row)[-1])  # rounding fallback: the last possible k

    def split_lengths(
        self, child_depth: int, m: int, k: int, uniform: Callable[[], float]
    ) -> list[int]:
        """Lengths of ``k`` sibling subtrees at ``child_depth`` that together have ``m`` tokens."""
        P_row = self.P[child_depth]  # noqa: N806
        lengths: list[int] = []
        for j in range(k, 1, -1):  # j arguments still to place
            top = m - (j - 1)  # the others need at least one token each
            rest = self.C[child_depth, j - 1, m - top : m][::-1]  # C^(j-1)(m - a), a = 1..top
            cdf = np.cumsum(P_row[1 : top + 1] * rest)
            index = int(np.searchsorted(cdf, uniform() * cdf[-1], side="right"))
            a = 1 + min(index, top - 1)
            lengths.append(a)
            m -= a
        lengths.append(m)
        return lengths

    def sample(self, uniform: Callable[[], float]) -> list[str]:
        """One expression of the recipe conditioned on the window, as canonical tokens."""
        out: list[str] = []
        stack: list[tuple[int, int] | None] = [(1, self.sample_root_length(uniform))]
        while stack:
            item = stack.pop()
            if item is None:
                out.append(CLOSE)
                continue
            d, n = item
            if n == 1:
                out.append(DIGITS[int(uniform() * 10)])
                continue
            out.append(OPERATORS[int(uniform() * 4)])
            k = self.sample_arg_count(d + 1, n - 2, uniform)
            lengths = self.split_lengths(d + 1, n - 2, k, uniform)
            stack.append(None)
            stack.extend((d + 1, a) for a in reversed(lengths))
        return out


# --------------------------------------------------------------------------------------------
# Generating data sets


def generate(
    recipe: Recipe,
    count: int,
    seed: int,
    exclude: Collection[str] = (),
    progress: bool = False,
    method: str = "dp",
) -> list[Example]:
    """``count`` distinct labelled expressions of ``recipe``, in draw order.

    Args:
        recipe: the recipe and window.
        count: how many distinct expressions.
        seed: seeds ``numpy.random.default_rng``.
        exclude: canonical texts that must not appear (e.g. the training set).
        progress: show a tqdm bar on stderr.
        method: ``"dp"`` (fast, exact) or ``"rejection"`` (the slow reference).

    Raises:
        ValueError: on an impossible window or an unknown method.
        RuntimeError: when the window holds fewer than ``count`` distinct expressions
            (detected as :data:`MAX_CONSECUTIVE_DUPLICATES` fruitless draws in a row).
    """
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    uniform = UniformStream(np.random.default_rng(seed))
    if method == "dp":
        tables = LengthTables(recipe)

        def draw() -> list[str]:
            return tables.sample(uniform)
    elif method == "rejection":

        def draw() -> list[str]:
            return sample_rejection(recipe, uniform)
    else:
        raise ValueError(f"unknown method {method!r}; use 'dp' or 'rejection'")

    seen: set[str] = set()
    examples: list[Example] = []
    fruitless = 0
    with tqdm(total=count, file=sys.stderr, disable=not progress, unit="expr") as bar:
        while len(examples) < count:
            toks = draw()
            text = " ".join(toks)
            if text in seen or text in exclude:
                fruitless += 1
                if fruitless >= MAX_CONSECUTIVE_DUPLICATES:
                    raise RuntimeError(
                        f"found only {len(examples)} distinct expressions of {count} in the "
                        f"window {recipe.window[0]}-{recipe.window[1]} "
                        f"after {fruitless} draws in a row without a new one"
                    )
                continue
            fruitless = 0
            seen.add(text)
            examples.append(Example(tuple(toks), evaluate_tokens(toks)))
            bar.update(1)
    return examples


@dataclass(frozen=True)
class SplitSpec:
    """A named, reproducible split.

    Attributes:
        name: the split's name (a key of :data:`SPLITS`).
        recipe: recipe and window.
        count: number of distinct examples.
        seed: generator seed.
        disjoint_from: names of splits none of whose expressions may appear in this one.
        pool: when above ``count``, draw this many distinct expressions and keep ``count`` of
            them chosen at random (seeded by ``seed``), in draw order. The original near-IID
            test file is a random tenth of one set of about 100,000 distinct expressions, and
            removing duplicates over a set that large makes short expressions rarer than a
            small draw does: 2,000 distinct draws have a median of 12 tokens and 18% of 45
            tokens or more; 2,000 of 100,000 have 15-16 and 22%, as the original file
            (``test_d20s.tsv``: 16 and 22.7%).
    """

    name: str
    recipe: Recipe
    count: int
    seed: int
    disjoint_from: tuple[str, ...] = ()
    pool: int = 0


_TRAIN_RECIPE = Recipe(min_tokens=2, max_tokens=100)

#: The standard suite (see the table in the module docstring).
SPLITS: dict[str, SplitSpec] = {
    spec.name: spec
    for spec in (
        SplitSpec("train", _TRAIN_RECIPE, 90_000, seed=1),
        SplitSpec("dev", _TRAIN_RECIPE, 1_000, seed=2, disjoint_from=("train",)),
        SplitSpec("test_iid", Recipe(2, 1000), 2_000, seed=3, pool=100_000),
        SplitSpec("len_200_300", Recipe(200, 300), 2_000, seed=4),
        SplitSpec("len_500_600", Recipe(500, 600), 2_000, seed=5),
        SplitSpec("len_900_1000", Recipe(900, 1000), 2_000, seed=6),
        SplitSpec("args_10", Recipe(100, 1000, max_args=10, max_depth=9), 2_000, seed=7),
        SplitSpec("args_15", Recipe(100, 1000, max_args=15, max_depth=9), 2_000, seed=8),
        SplitSpec("lra", Recipe(501, 1999, max_args=10, max_depth=10), 2_000, seed=9),
    )
}


def default_cache_dir() -> Path:
    """``$RIR_DATA_CACHE`` if set, else ``data_cache/`` at the repository root."""
    env = os.environ.get("RIR_DATA_CACHE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data_cache"


def _spec_key(spec: SplitSpec) -> dict[str, object]:
    """Everything that determines a split's content, exclusions included (recursively)."""
    key: dict[str, object] = {
        "version": GENERATOR_VERSION,
        "recipe": asdict(spec.recipe),
        "count": spec.count,
        "seed": spec.seed,
        "disjoint_from": [_spec_key(SPLITS[name]) for name in spec.disjoint_from],
    }
    if spec.pool > spec.count:  # only then: the other splits keep their cache names
        key["pool"] = spec.pool
    return key


def split_cache_path(spec: SplitSpec, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`load_split` caches ``spec``: ``NAME-COUNT-HASH.tsv`` under the cache dir."""
    digest = hashlib.sha256(json.dumps(_spec_key(spec), sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"{spec.name}-{spec.count}-{digest[:10]}.tsv"


def load_split(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    n: int | None = None,
    progress: bool = False,
) -> list[Example]:
    """The examples of a standard split, generated once and then read from the cache.

    Args:
        name: a key of :data:`SPLITS`.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        n: return only the first ``n`` examples. The whole split is still generated and cached
            (so ``n`` saves nothing the first time); the first ``n`` are the first ``n`` drawn
            (of those kept, for a split with a ``pool``).
        progress: show a tqdm bar on stderr while generating.

    Raises:
        KeyError: for an unknown split name.
    """
    if name not in SPLITS:
        raise KeyError(f"unknown split {name!r}; known splits: {', '.join(SPLITS)}")
    spec = SPLITS[name]
    path = split_cache_path(spec, cache_dir)
    if path.exists():
        examples = read_tsv(path)
    else:
        exclude: set[str] = set()
        for other in spec.disjoint_from:
            exclude.update(ex.text for ex in load_split(other, cache_dir, progress=progress))
        if spec.pool > spec.count:
            pool = generate(spec.recipe, spec.pool, spec.seed, exclude, progress=progress)
            keep = np.random.default_rng(spec.seed).choice(spec.pool, spec.count, replace=False)
            examples = [pool[i] for i in sorted(keep.tolist())]
        else:
            examples = generate(spec.recipe, spec.count, spec.seed, exclude, progress=progress)
        write_tsv(path, examples)
    return examples if n is None else examples[:n]


# --------------------------------------------------------------------------------------------
# Command line


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rir_core.generate",
        description="Generate distinct ListOps expressions with exact labels (TSV: label, "
        "expression).",
    )
    parser.add_argument("--split", choices=sorted(SPLITS), help="a standard split by name")
    parser.add_argument("--n", type=int, help="number of distinct expressions")
    parser.add_argument("--min-tokens", type=int, help="shortest expression (tokens)")
    parser.add_argument("--max-tokens", type=int, help="longest expression (tokens)")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--max-args", type=int, help="most arguments per operator (default 5)")
    parser.add_argument("--max-depth", type=int, help="forced-leaf depth, root = 1 (default 20)")
    parser.add_argument("--p-op", type=float, help="operator probability (default 0.25)")
    parser.add_argument("--out", required=True, help="output TSV file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m rir_core.generate``; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    custom = {
        "--n": args.n,
        "--min-tokens": args.min_tokens,
        "--max-tokens": args.max_tokens,
        "--seed": args.seed,
    }
    shape = {"--max-args": args.max_args, "--max-depth": args.max_depth, "--p-op": args.p_op}
    out = Path(args.out)
    if out.exists() and out.is_dir():
        parser.error(f"--out {args.out} is a directory, not a file")
    if args.split is not None:
        given = [flag for flag, value in {**custom, **shape}.items() if value is not None]
        if given:
            parser.error(f"--split cannot be combined with {', '.join(given)}")
    else:
        missing = [flag for flag, value in custom.items() if value is None]
        if missing:
            parser.error(f"missing {', '.join(missing)} (or give --split NAME)")
        if args.n <= 0:
            parser.error(f"--n must be positive, got {args.n}")
        if args.seed < 0:
            parser.error(f"--seed must be non-negative, got {args.seed}")
    try:
        if args.split is not None:
            examples = load_split(args.split, progress=True)
        else:
            options = {
                "max_args": args.max_args,
                "max_depth": args.max_depth,
                "p_op": args.p_op,
            }
            recipe = Recipe(
                args.min_tokens,
                args.max_tokens,
                **{key: value for key, value in options.items() if value is not None},
            )
            examples = generate(recipe, args.n, args.seed, progress=True)
    except (ValueError, RuntimeError) as err:
        parser.error(str(err))
    except OSError as err:
        parser.error(f"cannot use the split cache: {err.strerror} ({err.filename})")
    try:
        write_tsv(out, examples)
    except OSError as err:
        parser.error(f"cannot write {args.out}: {err.strerror}")
    print(f"wrote {len(examples)} examples to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
