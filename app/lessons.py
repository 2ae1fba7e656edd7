"""Lessons: the guided tour, the presets gallery and the links a teacher hands out.

Pure data and URL builders (no streamlit here): a :class:`View` says what a link opens (a page,
an expression, the inference settings and the Explorer's level / chunk / step); the tour and the
gallery are lists of views with their text. The two searches at the end (an expression on which
the beam-alignment strategies disagree, and failures of a model) take a ``predict`` function,
so they run on any model and are tested with a fake one.

A view becomes a link in two forms:

- explicit: ``/alignment?expr=...&w=30&level=0`` - the query parameters of ``app.state``
  (``QUERY_KEYS``), read on a session's first run;
- short: ``/alignment?lesson=alignment-page`` - a named lesson of :func:`lessons`, applied by
  ``app/teacher.py`` on a session's first run.

Add ``teacher=1`` to either for teacher mode (large text, fewer controls).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from urllib.parse import urlencode

from rir_core.generate import Recipe, generate
from rir_core.listops import Op, parse, to_text, walk
from rir_core.outer import depth_performed, schedule

# Page name -> URL path (app/main.py's st.Page url_path; the Explorer is the default page).
PAGE_PATHS = {"explorer": "", "alignment": "alignment", "depth": "depth", "guide": "guide"}
# Page name -> page script, relative to app/main.py (what st.switch_page takes).
PAGE_FILES = {
    "explorer": "pages/explorer.py",
    "alignment": "pages/alignment.py",
    "depth": "pages/depth.py",
    "guide": "pages/guide.py",
}
PAGE_TITLES = {
    "explorer": "Explorer",
    "alignment": "Beam alignment",
    "depth": "Depth bounds",
    "guide": "Guide",
}

LESSON_PARAM = "lesson"  # ?lesson=ID
TEACHER_PARAM = "teacher"  # ?teacher=1

PAPER_WIDTH = 30  # W of the paper (and of the shipped model): the tour's chunk pictures need it

# --------------------------------------------------------------------------------------------
# The expressions


SHALLOW = "[MAX 2 9 [MIN 4 7 ] 0 ]"
EVERY_OPERATOR = "[SM [MIN 3 8 ] [MAX 1 5 2 ] [MED 9 4 6 7 ] 2 ]"
DEEP = "[MAX 1 [MIN 9 [SM 2 [MED 3 [MAX 4 [MIN 8 [SM 5 6 ] ] ] 7 ] ] 0 ] ]"
# The generator's recipe and seed of each long expression (the Explorer's presets use the same).
LONG_RECIPE, LONG_SEED = Recipe(95, 105), 7  # ~100 tokens: two outer levels at W = 30
VERY_LONG_RECIPE, VERY_LONG_SEED = Recipe(950, 1000), 7  # ~1,000 tokens: three levels
CROSSING_RECIPE, CROSSING_SEED = Recipe(50, 80), 3  # searched for a chunk-crossing operator
CROSSING_SEARCH = 200  # how many generated expressions that search may look at


@functools.cache
def long_expression() -> str:
    """About 100 tokens (``generate(Recipe(95, 105), 1, seed=7)``)."""
    return generate(LONG_RECIPE, 1, seed=LONG_SEED)[0].text


@functools.cache
def very_long_expression() -> str:
    """950-1,000 tokens (``generate(Recipe(950, 1000), 1, seed=7)``)."""
    return generate(VERY_LONG_RECIPE, 1, seed=VERY_LONG_SEED)[0].text


@dataclass(frozen=True)
class Crossing:
    """An expression with an operator whose tokens straddle a chunk boundary."""

    expression: str
    span: tuple[int, int]  # the operator's [first, last) tokens
    boundary: int  # the first token of the second chunk
    text: str  # the operator's own text


@functools.cache
def chunk_crossing(width: int = PAPER_WIDTH) -> Crossing:
    """The first generated expression (fixed seed) with a flat operator (digits only, at most
    10 tokens) that starts at least 3 tokens before the first chunk boundary and ends at
    least 3 tokens after it."""
    for ex in generate(CROSSING_RECIPE, CROSSING_SEARCH, seed=CROSSING_SEED):
        if len(ex.tokens) < 1.5 * width:  # one chunk: no boundary at all
            continue
        for node in walk(parse(ex.text)):
            if not isinstance(node, Op) or any(isinstance(a, Op) for a in node.args):
                continue
            first, last = node.first, node.last
            if last - first <= 10 and first <= width - 3 and last >= width + 3:
                return Crossing(ex.text, (first, last), width, to_text(node))
    raise RuntimeError("no chunk-crossing expression found; widen CROSSING_SEARCH")


def n_tokens(expression: str) -> int:
    return len(expression.split())


# --------------------------------------------------------------------------------------------
# Views and links


# The Explorer's sections a lesson can open on (its headings' anchors).
TREES, OUTER, INNER, DEPTH = "trees", "outer-recursion", "inner-recursion", "sequential-depth"
SECTIONS = (TREES, OUTER, INNER, DEPTH)


@dataclass(frozen=True)
class View:
    """What a link opens. ``None`` leaves a setting at the model's default (a fresh session's)."""

    page: str = "explorer"
    expression: str = SHALLOW
    beam_size: int | None = None
    chunk_width: int | None = None
    alignment: str | None = None
    seed: int | None = None
    level: int | None = None  # the Explorer's outer level (0 = the tokens)
    chunk: int | None = None  # the chunk of that level shown in the inner recursion
    step: int | None = None  # the merge step in that chunk (1-based)
    # The page section a lesson link scrolls into view (a heading's anchor; see SECTIONS).
    section: str | None = None

    def __post_init__(self) -> None:
        if self.page not in PAGE_PATHS:
            raise ValueError(f"unknown page {self.page!r}; one of {sorted(PAGE_PATHS)}")

    def query_params(self, teacher: bool = False) -> dict[str, str]:
        """The explicit query parameters (the names of ``app.state.QUERY_KEYS``)."""
        pairs = {
            "expr": self.expression,
            "seed": self.seed,
            "k": self.beam_size,
            "w": self.chunk_width,
            "align": self.alignment,
            "level": self.level,
            "chunk": self.chunk,
            "step": self.step,
        }
        params = {k: str(v) for k, v in pairs.items() if v is not None}
        if teacher:
            params[TEACHER_PARAM] = "1"
        return params

    def url(self, base: str = "", teacher: bool = False) -> str:
        """``BASE/PAGE?expr=...``: every part of the view spelled out in the link."""
        return _join(base, self.page, self.query_params(teacher))


def _join(base: str, page: str, params: dict[str, str]) -> str:
    return f"{base.rstrip('/')}/{PAGE_PATHS[page]}?{urlencode(params)}"


def lesson_url(lesson_id: str, base: str = "", teacher: bool = False) -> str:
    """``BASE/PAGE?lesson=ID``: the short link of a named lesson."""
    params = {LESSON_PARAM: lesson_id}
    if teacher:
        params[TEACHER_PARAM] = "1"
    return _join(base, lessons()[lesson_id].page, params)


# --------------------------------------------------------------------------------------------
# The guided tour


@dataclass(frozen=True)
class TourStep:
    """One numbered step of the tour: a short text beside a live view, and where to go next."""

    number: int
    slug: str  # also its lesson id
    title: str
    text: str  # markdown
    view: View  # what "Open in the Explorer" opens (and what the live view is traced from)
    also: View | None = None  # a second page that shows the same idea


def tour() -> list[TourStep]:
    """The eight steps, in order."""
    long = long_expression()
    n = n_tokens(long)
    big = n_tokens(very_long_expression())
    sizes = schedule(n, PAPER_WIDTH)
    w = PAPER_WIDTH
    return [
        TourStep(
            1,
            "tree",
            "What a tree-recursive network does",
            "A ListOps expression's value depends on its **tree**: `[MIN 4 7 ]` must be "
            "computed before `[MAX ...]` can use it. A tree-recursive network reads the tokens "
            "as vectors and merges two neighbours into a parent vector with one learned cell "
            "(the Gated Recursive Cell), again and again, until one vector is left; the "
            "classifier reads that root. Nobody tells the model the tree: it must choose "
            "**which** neighbours to merge. The picture is the tree it chose; green nodes "
            "match a bracket of the expression.",
            View(expression=SHALLOW, level=0, chunk=0, step=1, section=TREES),
        ),
        TourStep(
            2,
            "depth",
            "Why sequential depth matters",
            f"A parent can only be computed after its children, so merges run **one after "
            f"another**. Choosing a tree by merging one pair at a time over the whole input "
            f"(EBT-GRC, BT-GRC) takes n - 1 steps: {n - 1} for this {n}-token expression, "
            f"{big - 1} for a {big}-token one. Each step waits for the last, so long inputs are "
            f"slow even on a GPU, and the gradient must travel back through all of them. A "
            f"balanced tree needs only ⌈log₂ n⌉ steps. RIR gets close to that without fixing "
            f"the tree.",
            View(expression=long, chunk_width=w, level=0, chunk=0, step=1, section=DEPTH),
            also=View(page="depth", expression=long, chunk_width=w),
        ),
        TourStep(
            3,
            "balanced",
            "Why a fixed balanced tree gets the structure wrong",
            "A balanced tree (BBT-GRC) pairs tokens (0, 1), (2, 3), ... whatever they say: "
            "fast, but blind. Here it cuts through brackets, so few of its nodes (green) are "
            "real sub-expressions; the cell would have to untangle operators and arguments "
            "mixed in the wrong order. Such models do poorly on ListOps and fail on inputs "
            "longer than the training data. The model's own beam search picks merges by "
            "content: compare its tree in the Explorer, and BBT-GRC's depth and answer next "
            "to it in the depth lab.",
            View(expression=DEEP, level=0, chunk=0, step=1, section=TREES),
            also=View(page="depth", expression=DEEP),
        ),
        TourStep(
            4,
            "beams",
            "Beam search over merges",
            "At every step a small scorer rates each adjacent pair, reading only the two "
            "children (cheap: the cell runs only on the pairs kept). Instead of trusting the "
            "single best pair, the model keeps **K partial trees** (beams): each beam proposes "
            "its likeliest merges, and the K best candidates overall survive, scored by the "
            "sum of their log-probabilities. A bad early merge can be outvoted later. Each row "
            "of the picture is a beam before this step; orange pairs are merged.",
            View(expression=EVERY_OPERATOR, level=0, chunk=0, step=3, section=INNER),
        ),
        TourStep(
            5,
            "chunks",
            "Chunks: recursion inside recursion",
            f"RIR nests two recursions. The **outer** one cuts a level of nodes into chunks of "
            f"W = {w} (only when the level holds at least 1.5·W = {1.5 * w:g} nodes); the "
            f"**inner** one, the beam search, reduces every chunk to one node, all chunks in "
            f"parallel. The {n} tokens here become {len(sizes[0])} chunks "
            f"({', '.join(map(str, sizes[0]))} tokens), hence {len(sizes[0])} nodes on level 1, "
            f"which form a single chunk. The picture shows the levels bottom-up; the amber "
            f"chunk is the one the Explorer opens on.",
            View(expression=long, chunk_width=w, level=0, chunk=1, step=1, section=OUTER),
        ),
        TourStep(
            6,
            "alignment",
            "Beam alignment",
            "Every chunk returns K beams, but the next level needs K whole sequences: one beam "
            "from each chunk, out of K^C combinations. The paper's **sample** alignment puts "
            "each chunk's best beam in slot 0 and draws the other slots from each chunk's beam "
            "probabilities; **rank** pairs beams by rank; **kbest**, added by this app (it is "
            "not in the paper), takes the K best-scoring combinations exactly. The picture "
            "shows which beam of every chunk each slot took.",
            View(expression=long, chunk_width=w, level=1, chunk=0, step=1, section=OUTER),
            # An expression the shipped model's strategies disagree on (app/alignment_lesson.py).
            also=alignment_lesson_view() or View(page="alignment", expression=long, chunk_width=w),
        ),
        TourStep(
            7,
            "bound",
            "The depth bound",
            f"Chunks of one level run in parallel, so a level costs only its widest chunk "
            f"(W - 1 merges), and there are about log_W n levels: at most about W·log_W n "
            f"sequential merges. For {big} tokens that is {depth_performed(big, w)} merges "
            f"instead of {big - 1}, while every chunk still chooses its own tree. The bars are "
            f"measured on the {n}-token expression: what the model actually ran.",
            View(expression=long, chunk_width=w, level=0, chunk=0, step=1, section=DEPTH),
            also=View(page="depth", expression=very_long_expression(), chunk_width=w),
        ),
        TourStep(
            8,
            "failure",
            "Where the model fails",
            "No model is perfect. The app searched generated expressions for ones its model "
            "gets wrong (see the gallery below). Open one in the Explorer and look for the "
            "first merge that mixes up a bracket: an operator merged with the wrong "
            "arguments, or a sub-expression cut by a chunk boundary.",
            View(expression=SHALLOW),  # replaced by a found failure (see the guide page)
        ),
    ]


# --------------------------------------------------------------------------------------------
# The presets gallery (the static part; the guide adds the two searched ones)


@dataclass(frozen=True)
class Preset:
    slug: str  # also its lesson id
    title: str
    line: str  # what it shows, in one line
    view: View
    extra: dict[str, str] = field(default_factory=dict)


def presets() -> list[Preset]:
    crossing = chunk_crossing()
    big = very_long_expression()
    a, b = crossing.span
    return [
        Preset(
            "shallow",
            "Shallow",
            f"One nested list, {n_tokens(SHALLOW)} tokens: the whole search fits on one screen.",
            View(expression=SHALLOW, level=0, chunk=0, step=1, section=TREES),
        ),
        Preset(
            "deep",
            "Deep",
            "Nested seven levels deep: the tree must be built from the inside out.",
            View(expression=DEEP, level=0, chunk=0, step=1, section=TREES),
        ),
        Preset(
            "every-operator",
            "Every operator",
            "MIN, MAX, MED (median) and SM (sum mod 10) in one expression.",
            View(expression=EVERY_OPERATOR, level=0, chunk=0, step=1, section=TREES),
        ),
        Preset(
            "chunk-crossing",
            "A sub-expression across a chunk boundary",
            f"`{crossing.text}` (tokens {a}-{b - 1}) is cut by the chunk boundary before token "
            f"{crossing.boundary}: chunk 0 must reduce its first half without the rest. The "
            f"bidirectional S4D layer runs over the whole input first, so those tokens "
            f"already carry context from across the cut.",
            View(
                expression=crossing.expression,
                chunk_width=PAPER_WIDTH,
                level=0,
                chunk=0,
                section=TREES,
            ),
            extra={"span": f"{a}-{b}"},
        ),
        Preset(
            "very-long",
            f"{n_tokens(big):,} tokens",
            f"{len(schedule(n_tokens(big), PAPER_WIDTH))} outer levels "
            f"({len(schedule(n_tokens(big), PAPER_WIDTH)[0])} chunks, then one); "
            f"{depth_performed(n_tokens(big), PAPER_WIDTH)} sequential merges instead of "
            f"{n_tokens(big) - 1}.",
            View(expression=big, chunk_width=PAPER_WIDTH, level=0, chunk=0, section=OUTER),
        ),
    ]


def alignment_lesson_view() -> View | None:
    """The searched ``alignment-page`` view (cached on the shipped weights' hash)."""
    from app.alignment_lesson import lesson_view

    return lesson_view()


@functools.cache
def lessons() -> Mapping[str, View]:
    """Lesson id -> view, for short links (``?lesson=ID``): the tour's steps (their second
    pages as ``ID-page``) and the static presets. The failure step is
    model-dependent: its links are explicit."""
    out: dict[str, View] = {}
    for step in tour():
        if step.slug != "failure":
            out[step.slug] = step.view
            if step.also is not None:
                out[f"{step.slug}-page"] = step.also
    for preset in presets():
        out[preset.slug] = preset.view
    return MappingProxyType(out)


# --------------------------------------------------------------------------------------------
# Searches over generated data (model-dependent; the guide page caches their results)

Predict = Callable[[Sequence[str], str], list[int]]  # (texts, alignment) -> predicted values

ALIGNMENTS = ("sample", "rank", "kbest")
# Alignment only matters once an input is chunked (>= 45 tokens at W = 30); short ones first.
ALIGNMENT_RECIPE, ALIGNMENT_SEED = Recipe(45, 150), 11
SEARCH_BATCH = 32
ALIGNMENT_MAX_SEARCH = 256


@dataclass(frozen=True)
class Disagreement:
    """An expression on which the alignment strategies predict different values."""

    expression: str
    label: int
    predictions: dict[str, int]  # alignment -> prediction
    searched: int  # expressions looked at


def find_disagreement(
    predict: Predict,
    recipe: Recipe = ALIGNMENT_RECIPE,
    seed: int = ALIGNMENT_SEED,
    max_search: int = ALIGNMENT_MAX_SEARCH,
    batch: int = SEARCH_BATCH,
) -> Disagreement | None:
    """The shortest expression of the first batch (of generated expressions, fixed seed) on
    which ``sample``, ``rank`` and ``kbest`` do not all predict the same value; None if none
    of the first ``max_search`` does."""
    examples = generate(recipe, max_search, seed=seed)
    for start in range(0, len(examples), batch):
        part = examples[start : start + batch]
        texts = [ex.text for ex in part]
        preds = {a: predict(texts, a) for a in ALIGNMENTS}
        differ = [i for i in range(len(part)) if len({preds[a][i] for a in ALIGNMENTS}) > 1]
        if differ:
            i = min(differ, key=lambda i: (len(part[i].tokens), i))
            return Disagreement(
                texts[i], part[i].label, {a: preds[a][i] for a in ALIGNMENTS}, start + len(part)
            )
    return None


@dataclass(frozen=True)
class Bucket:
    name: str
    recipe: Recipe
    seed: int


FAILURE_BUCKETS = (
    Bucket("short (10-40 tokens)", Recipe(10, 40), 21),
    Bucket("chunked (45-150 tokens)", Recipe(45, 150), 22),
    Bucket("long (200-300 tokens)", Recipe(200, 300), 23),
)
FAILURE_MAX_SEARCH = 128


@dataclass(frozen=True)
class Failure:
    """A generated expression the model gets wrong, or none found (``expression`` None)."""

    bucket: str
    expression: str | None
    label: int | None
    prediction: int | None
    wrong: int  # wrong predictions among ...
    searched: int  # ... this many expressions of the bucket


def find_failures(
    predict: Predict,
    alignment: str,
    buckets: Sequence[Bucket] = FAILURE_BUCKETS,
    max_search: int = FAILURE_MAX_SEARCH,
    batch: int = SEARCH_BATCH,
) -> list[Failure]:
    """Per bucket: the shortest wrong prediction in the first batch that has one."""
    out = []
    for bucket in buckets:
        examples = generate(bucket.recipe, max_search, seed=bucket.seed)
        found = Failure(bucket.name, None, None, None, 0, 0)
        for start in range(0, len(examples), batch):
            part = examples[start : start + batch]
            preds = predict([ex.text for ex in part], alignment)
            wrong = [i for i, ex in enumerate(part) if preds[i] != ex.label]
            searched = start + len(part)
            if wrong:
                i = min(wrong, key=lambda i: (len(part[i].tokens), i))
                found = Failure(
                    bucket.name, part[i].text, part[i].label, preds[i], len(wrong), searched
                )
                break
            found = replace(found, searched=searched)
        out.append(found)
    return out
