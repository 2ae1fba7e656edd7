"""The ``alignment-page`` lesson's expression: one where the alignment strategies disagree.

The lesson plan says "switch the alignment and watch the answer change", so the expression must
make the SHIPPED model answer differently under different strategies (SPEC section 4). It is
found by a search over generated data with that model (:func:`search`), never written by hand,
and cached in ``app/alignment_lesson.json`` keyed on the SHA-256 of the shipped weights and the
search recipe: when the shipped model changes, the next lookup searches again (about a minute
on two CPU cores) and rewrites the file. Nothing here imports streamlit.

A disagreement "teaches something" when switching the strategy turns a right answer into a
wrong one. The search prefers, in this order: the paper's ``sample`` and our exact ``kbest``
answering differently with one of them right (the page's main contrast: sampled slots against
the K best combinations); at least one strategy right and one wrong; the most distinct
answers; the shortest expression. Of those, in that order, the first on which one forced pick
of ``sample``'s level-0 alignment changes its answer (towards the truth when ``sample`` is
wrong, away from it when right) wins: the page's counterfactual and the worked session of
docs/alignment_debugging.md need such a pick (:func:`model_flips`). When no candidate has one,
the best candidate is taken all the same.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rir_core.generate import Recipe, generate

log = logging.getLogger(__name__)

CACHE_FILE = Path(__file__).resolve().with_name("alignment_lesson.json")
STRATEGIES = ("sample", "rank", "random", "kbest")
PAPER = "sample"  # the paper's alignment, and the shipped model's default
# Chunked inputs only (>= 45 tokens at W = 30), short enough to read: the search's data.
RECIPE = Recipe(45, 150)
DATA_SEED = 11
SEARCH_SIZE = 256  # generated expressions looked at (about a minute with the shipped model)
RUN_SEED = 0  # the model's seed for 'sample' and 'random' (the lesson link fixes it too)
CHUNK_WIDTH = 30  # the paper's W, the shipped model's
RULE = (  # search()
    "paper-vs-kbest, then right-and-wrong, then distinct answers, then shortest; "
    "the first with a forced pick that changes sample's answer"
)

Predict = Callable[[Sequence[str], str], list[int]]  # (texts, alignment) -> predictions
# (expression, truth, sample's answer) -> whether one forced pick changes that answer
Flips = Callable[[str, int, int], bool]


@dataclass(frozen=True)
class LessonCase:
    """The searched expression and what the model answered on it."""

    expression: str
    label: int
    predictions: dict[str, int]  # strategy -> prediction (seed RUN_SEED, W = CHUNK_WIDTH)
    searched: int  # generated expressions looked at
    candidates: int  # of those, how many the strategies disagree on
    weights_sha256: str
    recipe: dict[str, Any]  # the search's settings (part of the cache key)
    seconds: float = field(default=0.0, compare=False)  # how long the search took

    @property
    def correct(self) -> list[str]:
        return [s for s, p in self.predictions.items() if p == self.label]


def search_key() -> dict[str, Any]:
    """What besides the weights decides the search's result."""
    return {
        "min_tokens": RECIPE.min_tokens,
        "max_tokens": RECIPE.max_tokens,
        "data_seed": DATA_SEED,
        "size": SEARCH_SIZE,
        "run_seed": RUN_SEED,
        "chunk_width": CHUNK_WIDTH,
        "strategies": list(STRATEGIES),
        "rule": RULE,
    }


def weights_hash(path: Path) -> str:
    """SHA-256 of a weights file (read in 1 MiB blocks; remembered while the file's size and
    modification time stay the same, as the guide asks for the tour on every run)."""
    info = path.stat()
    return _hash(str(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def search(
    predict: Predict,
    weights_sha256: str,
    size: int = SEARCH_SIZE,
    batch: int = 64,
    flips: Flips | None = None,
) -> LessonCase | None:
    """The best disagreement among ``size`` generated expressions (see the module docstring),
    or None when the strategies agree on all of them. With ``flips``, the first candidate in
    that order on which it holds (else the best candidate)."""
    start = time.perf_counter()
    examples = generate(RECIPE, size, seed=DATA_SEED)
    texts = [ex.text for ex in examples]
    preds = {s: [] for s in STRATEGIES}
    for lo in range(0, len(texts), batch):
        for s in STRATEGIES:
            preds[s] += predict(texts[lo : lo + batch], s)
    ranked = []  # (key, index, answers) of every disagreement
    for i, ex in enumerate(examples):
        answers = {s: preds[s][i] for s in STRATEGIES}
        distinct = len(set(answers.values()))
        if distinct < 2:
            continue
        right = sum(p == ex.label for p in answers.values())
        teaches = 0 < right < len(STRATEGIES)
        paper, ours = answers[PAPER], answers["kbest"]
        contrast = paper != ours and ex.label in (paper, ours)
        ranked.append(((not contrast, not teaches, -distinct, len(ex.tokens), i), i, answers))
    if not ranked:
        return None
    ranked.sort(key=lambda r: r[0])
    candidates = len(ranked)
    best = ranked[0]
    if flips is not None:
        best = next(
            (r for r in ranked if flips(texts[r[1]], examples[r[1]].label, r[2][PAPER])), best
        )
    _, i, answers = best
    return LessonCase(
        expression=texts[i],
        label=examples[i].label,
        predictions=answers,
        searched=len(examples),
        candidates=candidates,
        weights_sha256=weights_sha256,
        recipe=search_key(),
        seconds=round(time.perf_counter() - start, 1),
    )


def model_predict(model) -> Predict:  # noqa: ANN001
    """``predict(texts, alignment)`` of a model at the lesson's seed and chunk width."""

    def predict(texts: Sequence[str], alignment: str) -> list[int]:
        return model.predict(
            list(texts), seed=RUN_SEED, chunk_width=CHUNK_WIDTH, alignment=alignment
        )

    return predict


def first_flip(model, expression: str, truth: int, answer: int):  # noqa: ANN001, ANN201
    """The first forced pick of the model's level-0 alignment (``sample``, the lesson's seed and
    W; slot, chunk, beam order) whose re-run changes ``answer`` (to the truth when the answer is
    wrong, to anything else when it is right), and the re-run's answer: ``(Force, int)``, or
    None when no single pick does (or the input is one chunk). See rir_core.counterfactual."""
    from rir_core.counterfactual import Force, Rerunner

    rr = Rerunner.record(model, expression, seed=RUN_SEED, chunk_width=CHUNK_WIDTH, alignment=PAPER)
    level = rr.levels.get(0)
    if level is None:  # one chunk: no alignment to change
        return None
    k, chunks = level.picks.shape  # (K, C)
    for slot in range(k):
        for chunk in range(chunks):
            for beam in range(k):
                if beam == int(level.picks[slot, chunk]) or not level.valid[chunk, beam]:
                    continue
                force = Force(0, slot, chunk, beam)
                new = rr.rerun(force).prediction
                if (new == truth) if answer != truth else (new != answer):
                    return force, new
    return None


def model_flips(model) -> Flips:  # noqa: ANN001
    """``flips(expression, truth, answer)`` of a model: whether :func:`first_flip` finds a
    forced pick that changes ``answer``."""
    return lambda expression, truth, answer: (
        first_flip(model, expression, truth, answer) is not None
    )


def read_cache(path: Path, weights_sha256: str) -> LessonCase | None:
    """The cached case if it was searched with these weights and this recipe, else None."""
    try:
        data = json.loads(path.read_text())
        case = LessonCase(**data)
    except (OSError, ValueError, TypeError):
        return None
    if case.weights_sha256 != weights_sha256 or case.recipe != search_key():
        return None
    return case


def write_cache(path: Path, case: LessonCase) -> None:
    """Write atomically (temporary file, then rename); a read-only checkout only logs."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".alignment_lesson.")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(case), f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot cache the alignment lesson in %s: %s", path, exc)


def lesson_case(
    weights: Path | None = None,
    cache: Path = CACHE_FILE,
    load_model: Callable[[], Any] | None = None,
    flips_of: Callable[[Any], Flips | None] | None = None,
) -> LessonCase | None:
    """The lesson's case for the shipped model: from the cache when it matches the weights,
    else searched now (and cached). None when there is no shipped model or no disagreement.
    ``flips_of(model)``: the search's forced-pick check (default :func:`model_flips`)."""
    from rir_core.pretrained import PRETRAINED_DIR, WEIGHTS_FILE, load_pretrained

    weights = weights or PRETRAINED_DIR / WEIGHTS_FILE
    if not weights.is_file():
        return None
    digest = weights_hash(weights)
    case = read_cache(cache, digest)
    if case is not None:
        return case
    log.info("the shipped model changed: searching a new alignment lesson")
    model = (load_model or load_pretrained)()
    case = search(model_predict(model), digest, flips=(flips_of or model_flips)(model))
    if case is not None:
        write_cache(cache, case)
    return case


def lesson_view(case: LessonCase | None = None):  # -> app.lessons.View | None
    """The ``alignment-page`` lesson: the Beam alignment page on the searched expression, with
    the search's seed and chunk width and the paper's strategy in the sidebar (None when
    there is no case: the tour then keeps its own expression)."""
    from app.lessons import View

    case = lesson_case() if case is None else case
    if case is None:
        return None
    return View(
        page="alignment",
        expression=case.expression,
        chunk_width=CHUNK_WIDTH,
        seed=RUN_SEED,
        alignment=PAPER,
    )


def main() -> int:
    """``python -m app.alignment_lesson``: print the lesson's case (searching if stale)."""
    case = lesson_case()
    if case is None:
        print("no shipped model, or the strategies agree on every searched expression")
        return 1
    print(json.dumps(asdict(case), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
