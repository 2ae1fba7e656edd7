"""Tests of the ListOps generator (rir_core.generate): exactness, determinism, splits, CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import rir_core.generate as gen
from rir_core.data import read_tsv
from rir_core.generate import (
    SPLITS,
    LengthTables,
    Recipe,
    SplitSpec,
    UniformStream,
    generate,
    load_split,
    sample_recipe,
    sample_rejection,
    split_cache_path,
)
from rir_core.listops import depth, evaluate, parse, stats, to_text

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# The length tables against an independent exact computation


def _exact_length_law(recipe: Recipe, d: int = 1) -> dict[int, float]:
    """Length distribution of a subtree at depth d, by direct recursion (tiny recipes only)."""
    if d == recipe.max_depth:
        return {1: 1.0}
    child = _exact_length_law(recipe, d + 1)
    law: Counter[int] = Counter({1: 1.0 - recipe.p_op})
    for k in range(2, recipe.max_args + 1):
        sums: dict[int, float] = {0: 1.0}
        for _ in range(k):
            nxt: Counter[int] = Counter()
            for total, p in sums.items():
                for n, q in child.items():
                    nxt[total + n] += p * q
            sums = nxt
        for total, p in sums.items():
            law[total + 2] += recipe.p_op / (recipe.max_args - 1) * p
    return dict(law)


def test_length_tables_match_exact_recursion() -> None:
    recipe = Recipe(2, 40, max_args=3, max_depth=4)  # longest possible tree: 2 + 3 * 17 = 53
    tables = LengthTables(recipe)
    exact = _exact_length_law(recipe)
    for n in range(1, 41):
        assert tables.P[1, n] == pytest.approx(exact.get(n, 0.0), rel=1e-12, abs=1e-15)
    full = LengthTables(Recipe(2, 60, max_args=3, max_depth=4))
    assert full.P[1].sum() == pytest.approx(1.0, rel=1e-12)
    assert full.P[1, 1] == pytest.approx(0.75)
    assert full.P[1, 2] == full.P[1, 3] == 0.0  # no tree has 2 or 3 tokens


def test_impossible_window_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot produce"):
        LengthTables(Recipe(30, 40, max_depth=2))  # depth 2: at most 2 + 5 tokens
    for bad in (
        dict(min_tokens=0, max_tokens=5),
        dict(min_tokens=10, max_tokens=5),
        dict(min_tokens=1, max_tokens=1),
        dict(min_tokens=2, max_tokens=9, max_args=1),
        dict(min_tokens=2, max_tokens=9, max_depth=1),
        dict(min_tokens=2, max_tokens=9, p_op=0.0),
    ):
        with pytest.raises(ValueError):
            Recipe(**bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# DP sampler versus plain rejection sampling


def _features(toks: list[str]) -> dict[str, object]:
    nesting = deepest = 0
    for tok in toks:
        if tok.startswith("["):
            nesting += 1
            deepest = max(deepest, nesting)
        elif tok == "]":
            nesting -= 1
    return {"length": len(toks), "depth": deepest}


def _chi2_two_sample(a: Counter[object], b: Counter[object], min_count: int = 10) -> float:
    """Two-sample chi-square statistic divided by a generous bound (pass when < 1).

    Bins with fewer than ``min_count`` observations in both samples together are merged. The
    bound, df + 6 sqrt(2 df) + 10, is far in the tail of the chi-square law with df degrees of
    freedom, so the test only fails on a real difference (the seeds are fixed anyway).
    """
    na, nb = sum(a.values()), sum(b.values())
    merged_a = merged_b = 0
    stat = 0.0
    bins = 0
    for key in set(a) | set(b):
        x, y = a.get(key, 0), b.get(key, 0)
        if x + y < min_count:
            merged_a += x
            merged_b += y
            continue
        stat += (math.sqrt(nb / na) * x - math.sqrt(na / nb) * y) ** 2 / (x + y)
        bins += 1
    if merged_a + merged_b:
        x, y = merged_a, merged_b
        stat += (math.sqrt(nb / na) * x - math.sqrt(na / nb) * y) ** 2 / (x + y)
        bins += 1
    df = max(bins - 1, 1)
    return stat / (df + 6 * math.sqrt(2 * df) + 10)


def _histograms(draws: list[list[str]]) -> dict[str, Counter[object]]:
    hist: dict[str, Counter[object]] = {
        name: Counter() for name in ("length", "depth", "op", "args", "label")
    }
    for toks in draws:
        feats = _features(toks)
        hist["length"][feats["length"]] += 1
        hist["depth"][feats["depth"]] += 1
        s = stats(" ".join(toks))
        for name, count in s.operator_counts.items():
            hist["op"][name] += count
        hist["args"][s.max_args] += 1
        hist["label"][s.value] += 1
    return hist


def _draw(
    sampler: Callable[[Callable[[], float]], list[str]], n: int, seed: int
) -> list[list[str]]:
    uniform = UniformStream(np.random.default_rng(seed))
    return [sampler(uniform) for _ in range(n)]


class _UniformRootLength(LengthTables):
    """A deliberately wrong sampler: root length uniform over the window."""

    def sample_root_length(self, uniform: Callable[[], float]) -> int:
        lo, hi = self.recipe.window
        return lo + int(uniform() * (hi - lo + 1))


def test_dp_sampler_matches_rejection_sampling() -> None:
    recipe = Recipe(10, 30)
    n = 6000
    reference = _histograms(_draw(lambda u: sample_rejection(recipe, u), n, seed=101))
    fast = _histograms(_draw(LengthTables(recipe).sample, n, seed=202))
    for name in reference:
        assert _chi2_two_sample(reference[name], fast[name]) < 1.0, name
    # The check has power: a sampler with the wrong length law fails it clearly.
    wrong = _histograms(_draw(_UniformRootLength(recipe).sample, n, seed=303))
    assert _chi2_two_sample(reference["length"], wrong["length"]) > 5.0


def test_dp_sampler_matches_rejection_with_shallow_wide_recipe() -> None:
    recipe = Recipe(8, 24, max_args=8, max_depth=3)
    n = 4000
    reference = _histograms(_draw(lambda u: sample_rejection(recipe, u), n, seed=7))
    fast = _histograms(_draw(LengthTables(recipe).sample, n, seed=8))
    for name in reference:
        assert _chi2_two_sample(reference[name], fast[name]) < 1.0, name


def test_sample_recipe_stops_at_the_limit() -> None:
    uniform = UniformStream(np.random.default_rng(0))
    recipe = Recipe(2, 6)
    for _ in range(500):
        toks = sample_recipe(recipe, uniform)
        assert toks is None or len(toks) <= 6


# --------------------------------------------------------------------------------------------
# generate()


def test_generate_is_deterministic_per_seed() -> None:
    recipe = Recipe(5, 60)
    first = generate(recipe, 150, seed=11)
    assert first == generate(recipe, 150, seed=11)
    assert first != generate(recipe, 150, seed=12)
    # Draw order: a shorter run is a prefix of a longer one.
    assert generate(recipe, 40, seed=11) == first[:40]


@pytest.mark.parametrize(
    ("recipe", "count"),
    [
        (Recipe(2, 100), 300),
        (Recipe(1, 12), 200),
        (Recipe(200, 300), 10),
        (Recipe(900, 1000), 6),
        (Recipe(100, 400, max_args=15, max_depth=9), 10),
        (Recipe(501, 700, max_args=10, max_depth=10), 5),
    ],
)
def test_generated_examples_respect_the_recipe(recipe: Recipe, count: int) -> None:
    examples = generate(recipe, count, seed=5)
    assert len(examples) == count
    assert len({ex.text for ex in examples}) == count  # distinct
    lo, hi = recipe.window
    for ex in examples:
        assert lo <= len(ex.tokens) <= hi
        root = parse(ex.text, max_tokens=hi)
        assert to_text(root) == ex.text
        assert evaluate(root) == ex.label
        assert depth(root) <= recipe.max_depth - 1
        assert stats(root).max_args <= recipe.max_args


def test_generate_excludes_and_reports_exhaustion(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = Recipe(4, 4)  # exactly 4 operators x 10 x 10 digits = 400 distinct expressions
    banned = {ex.text for ex in generate(recipe, 100, seed=1)}
    others = generate(recipe, 300, seed=2, exclude=banned)
    assert not banned & {ex.text for ex in others}
    monkeypatch.setattr(gen, "MAX_CONSECUTIVE_DUPLICATES", 2000)
    with pytest.raises(RuntimeError, match="distinct"):
        generate(recipe, 401, seed=3)


def test_generate_rejection_method_and_bad_method() -> None:
    examples = generate(Recipe(6, 20), 30, seed=4, method="rejection")
    assert all(6 <= len(ex) <= 20 for ex in examples)
    with pytest.raises(ValueError, match="unknown method"):
        generate(Recipe(6, 20), 3, seed=4, method="magic")


# --------------------------------------------------------------------------------------------
# Standard splits and the cache


def test_standard_split_table() -> None:
    expected = {
        "train": (2, 100, 5, 20, 90_000),
        "dev": (2, 100, 5, 20, 1_000),
        "test_iid": (2, 1000, 5, 20, 2_000),
        "len_200_300": (200, 300, 5, 20, 2_000),
        "len_500_600": (500, 600, 5, 20, 2_000),
        "len_900_1000": (900, 1000, 5, 20, 2_000),
        "args_10": (100, 1000, 10, 9, 2_000),
        "args_15": (100, 1000, 15, 9, 2_000),
        "lra": (501, 1999, 10, 10, 2_000),
    }
    assert set(SPLITS) == set(expected)
    for name, (lo, hi, args, max_depth, count) in expected.items():
        spec = SPLITS[name]
        assert spec.name == name
        r = spec.recipe
        assert (r.min_tokens, r.max_tokens, r.max_args, r.max_depth, spec.count) == (
            lo,
            hi,
            args,
            max_depth,
            count,
        )
        assert r.p_op == 0.25
    assert len({spec.seed for spec in SPLITS.values()}) == len(SPLITS)
    assert SPLITS["dev"].disjoint_from == ("train",)
    # near-IID is drawn as the original file was: a random 2,000 of 100,000 distinct
    assert {name: spec.pool for name, spec in SPLITS.items() if spec.pool} == {"test_iid": 100_000}


def test_a_split_with_a_pool_keeps_a_random_part_of_it_in_draw_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = Recipe(2, 30)
    pooled = SplitSpec("tiny_iid", recipe, 300, seed=11, pool=3_000)
    plain = SplitSpec("tiny_iid", recipe, 300, seed=11)
    monkeypatch.setitem(SPLITS, "tiny_iid", pooled)
    examples = load_split("tiny_iid", cache_dir=tmp_path)
    pool = generate(recipe, 3_000, seed=11)
    where = {ex.text: i for i, ex in enumerate(pool)}
    places = [where[ex.text] for ex in examples]
    assert len(examples) == 300 and places == sorted(set(places))
    assert places[-1] > 300  # not simply the first 300 drawn
    assert load_split("tiny_iid", cache_dir=tmp_path, n=5) == examples[:5]
    # its own cache entry: the same split without a pool is another file
    assert split_cache_path(pooled, tmp_path) != split_cache_path(plain, tmp_path)
    assert split_cache_path(pooled, tmp_path).exists()
    # removing duplicates over the larger set leaves fewer of the few short expressions
    first = generate(recipe, 300, seed=11)
    short = sum(len(ex) <= 5 for ex in first)
    assert sum(len(ex) <= 5 for ex in examples) < short * 0.8


@pytest.fixture
def tiny_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = Recipe(2, 12)
    monkeypatch.setitem(SPLITS, "tiny_train", SplitSpec("tiny_train", recipe, 300, seed=5))
    monkeypatch.setitem(
        SPLITS, "tiny_dev", SplitSpec("tiny_dev", recipe, 60, seed=6, disjoint_from=("tiny_train",))
    )


@pytest.mark.usefixtures("tiny_splits")
def test_load_split_caches_and_keeps_dev_disjoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = load_split("tiny_dev", cache_dir=tmp_path)
    train = load_split("tiny_train", cache_dir=tmp_path)
    assert len(dev) == 60 and len(train) == 300
    assert not {ex.text for ex in dev} & {ex.text for ex in train}
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.endswith(".tsv") for f in files)
    assert split_cache_path(SPLITS["tiny_dev"], tmp_path).exists()

    # The second time it reads the cache instead of generating.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(gen, "generate", refuse)
    assert load_split("tiny_dev", cache_dir=tmp_path) == dev
    assert load_split("tiny_dev", cache_dir=tmp_path, n=7) == dev[:7]
    assert read_tsv(split_cache_path(SPLITS["tiny_train"], tmp_path)) == train


def test_cache_key_and_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SPLITS["len_200_300"]
    path = split_cache_path(spec, tmp_path)
    assert path.parent == tmp_path and path.name.startswith("len_200_300-2000-")
    changed = SplitSpec(spec.name, spec.recipe, spec.count, seed=spec.seed + 1)
    assert split_cache_path(changed, tmp_path) != path
    monkeypatch.setenv("RIR_DATA_CACHE", str(tmp_path / "elsewhere"))
    assert split_cache_path(spec).parent == tmp_path / "elsewhere"
    monkeypatch.delenv("RIR_DATA_CACHE")
    assert split_cache_path(spec).parent == REPO / "data_cache"
    with pytest.raises(KeyError, match="unknown split"):
        load_split("nope", cache_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_writes_distinct_labelled_examples(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "gen.tsv"
    argv = ["--n", "25", "--min-tokens", "5", "--max-tokens", "30", "--seed", "1"]
    assert gen.main([*argv, "--out", str(out)]) == 0
    examples = read_tsv(out, check_labels=True)
    assert len(examples) == 25 and len({ex.text for ex in examples}) == 25
    assert examples == generate(Recipe(5, 30), 25, seed=1)
    wide = tmp_path / "wide.tsv"
    argv = ["--n", "5", "--min-tokens", "20", "--max-tokens", "40", "--seed", "2", "--max-args"]
    assert gen.main([*argv, "9", "--max-depth", "4", "--p-op", "0.5", "--out", str(wide)]) == 0
    assert read_tsv(wide) == generate(Recipe(20, 40, 9, 4, 0.5), 5, seed=2)


@pytest.mark.usefixtures("tiny_splits")
def test_cli_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIR_DATA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "dev.tsv"
    assert gen.main(["--split", "tiny_dev", "--out", str(out)]) == 0
    assert read_tsv(out) == load_split("tiny_dev")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--n", "5", "--min-tokens", "5", "--max-tokens", "30"], "missing --seed"),
        (["--n", "0", "--min-tokens", "5", "--max-tokens", "30", "--seed", "1"], "--n must"),
        (["--n", "5", "--min-tokens", "50", "--max-tokens", "30", "--seed", "1"], "max_tokens"),
        (
            ["--n", "5", "--min-tokens", "50", "--max-tokens", "60", "--seed", "1"]
            + ["--max-depth", "2"],
            "cannot produce",
        ),
        (["--n", "500", "--min-tokens", "4", "--max-tokens", "4", "--seed", "1"], "distinct"),
        (["--split", "train", "--n", "5"], "cannot be combined"),
        (["--split", "train", "--max-args", "7"], "cannot be combined with --max-args"),
        (["--n", "5", "--min-tokens", "5", "--max-tokens", "30", "--seed", "-1"], "--seed must"),
        (
            ["--n", "5", "--min-tokens", "5", "--max-tokens", "20000", "--seed", "1"],
            "above the supported",
        ),
        (
            ["--n", "5", "--min-tokens", "5", "--max-tokens", "30", "--seed", "1"]
            + ["--p-op", "1.5"],
            "p_op",
        ),
        (["--split", "nope"], "invalid choice"),
        (["--n", "five"], "invalid int value"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_sentence(
    argv: list[str],
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gen, "MAX_CONSECUTIVE_DUPLICATES", 2000)
    with pytest.raises(SystemExit) as info:
        gen.main([*argv, "--out", str(tmp_path / "x.tsv")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "x.tsv").exists()


def test_cli_refuses_a_directory_or_unwritable_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--n", "2", "--min-tokens", "4", "--max-tokens", "9", "--seed", "0", "--out"]
    with pytest.raises(SystemExit) as info:
        gen.main([*argv, str(tmp_path)])
    assert info.value.code == 2 and "is a directory" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as info:
        gen.main([*argv, str(blocker / "out.tsv")])  # a file where a folder should be
    err = capsys.readouterr().err
    assert info.value.code == 2 and "cannot write" in err and "Traceback" not in err


def test_cli_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "m.tsv"
    ok = subprocess.run(
        [sys.executable, "-m", "rir_core.generate", "--n", "3", "--min-tokens", "4"]
        + ["--max-tokens", "9", "--seed", "0", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(read_tsv(out)) == 3
    bad = subprocess.run(
        [sys.executable, "-m", "rir_core.generate", "--n", "3", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "error: missing" in bad.stderr
