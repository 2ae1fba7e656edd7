"""The Guide page, lesson links and teacher mode under AppTest (no browser), with a tiny random
model; and the lesson data of ``app/lessons.py`` on their own."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from app import lessons as L
from app import state, teacher
from rir_core.listops import evaluate, parse, to_text
from rir_core.model import build_model

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"
GUIDE = "pages/guide.py"
TITLES = {"explorer": "RIR Explorer", "alignment": "Beam alignment", "depth": "Depth bounds"}


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setenv(state.MODEL_ENV, "random-small")


def _app(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=120)
    at.query_params.update(query)
    return at.run()


def _guide(**query: str) -> AppTest:
    at = _app(**query)  # run once first: st.navigation registers the pages' url paths
    return at.switch_page(GUIDE).run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _param(at: AppTest, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def _styles(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


# --------------------------------------------------------------------------------------------
# The lessons' data


def test_every_lesson_is_canonical_and_in_range():
    for lesson_id, view in L.lessons().items():
        assert to_text(parse(view.expression)) == view.expression, lesson_id
        if view.beam_size is not None:
            assert state.BEAM_RANGE[0] <= view.beam_size <= state.BEAM_RANGE[1]
        if view.chunk_width is not None:
            assert state.WIDTH_RANGE[0] <= view.chunk_width <= state.WIDTH_RANGE[1]
    assert len(L.very_long_expression().split()) >= 900
    assert len(L.tour()) == 8
    assert [s.number for s in L.tour()] == list(range(1, 9))


def test_every_lesson_step_exists_in_its_trace():
    """A link promises a level, chunk and step: they must exist (the Explorer would clamp
    silently). Traced with the tiny model: the chunk schedule does not depend on weights."""
    model = build_model(hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8).eval()
    for lesson_id, view in L.lessons().items():
        if view.page != "explorer" or view.level is None:
            continue
        if len(view.expression.split()) > 200:
            continue  # the 1,000-token one: level 0 chunk 0 always exists
        trace = model.trace(
            view.expression, beam_size=view.beam_size, chunk_width=view.chunk_width
        ).to_dict()
        level = trace["levels"][view.level]
        detail = level["chunk_details"][view.chunk or 0]
        assert (view.step or 1) <= max(1, len(detail["steps"])), lesson_id


def test_the_chunk_crossing_preset_crosses_a_boundary():
    crossing = L.chunk_crossing()
    first, last = crossing.span
    assert first < crossing.boundary < last
    tokens = crossing.expression.split()
    assert " ".join(tokens[first:last]) == crossing.text
    assert len(tokens) >= 1.5 * L.PAPER_WIDTH


def test_urls_spell_out_the_view():
    view = L.View(page="alignment", expression="[MAX 2 9 ]", chunk_width=4, level=1, step=2)
    url = view.url("http://host:8501/", teacher=True)
    parts = urlsplit(url)
    assert parts.path == "/alignment"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {"expr": "[MAX 2 9 ]", "w": "4", "level": "1", "step": "2", "teacher": "1"}
    assert set(query) - {"teacher"} <= set(state.QUERY_KEYS.values())
    assert L.View().url() == "/?expr=%5BMAX+2+9+%5BMIN+4+7+%5D+0+%5D"
    assert L.lesson_url("chunks") == "/?lesson=chunks"
    assert L.lesson_url("alignment-page", "http://h", teacher=True) == (
        "http://h/alignment?lesson=alignment-page&teacher=1"
    )
    with pytest.raises(ValueError, match="unknown page"):
        L.View(page="nowhere")


def test_searches_with_a_fake_model():
    def predict(texts, alignment):  # disagrees on the 3rd expression only, once chunked
        return [(1 if alignment == "rank" and i == 2 else 0) for i in range(len(texts))]

    found = L.find_disagreement(predict, max_search=8, batch=4)
    assert found is not None and found.predictions == {"sample": 0, "rank": 1, "kbest": 0}
    assert found.searched == 4
    assert L.find_disagreement(lambda texts, a: [0] * len(texts), max_search=8, batch=4) is None

    buckets = [L.Bucket("tiny", L.Recipe(5, 9), 1)]
    failures = L.find_failures(lambda texts, a: [-1] * len(texts), "sample", buckets, 8, 4)
    assert failures[0].expression is not None and failures[0].wrong == 4
    assert failures[0].searched == 4 and failures[0].prediction == -1
    perfect = L.find_failures(
        lambda texts, a: [evaluate(t) for t in texts], "sample", buckets, 8, 4
    )
    assert perfect[0].expression is None and perfect[0].searched == 8


def test_css_class_follows_streamlit():
    assert teacher.css_class("settings.seed") == "st-key-settings-seed"
    assert teacher.css_class("explorer.random_length") == "st-key-explorer-random_length"


# --------------------------------------------------------------------------------------------
# The Guide page


def test_guide_shows_the_tour_the_gallery_and_the_links(monkeypatch):
    import rir_core.pretrained

    monkeypatch.setattr(rir_core.pretrained, "pretrained_available", lambda: False)
    at = _guide()
    _ok(at)
    assert [t.value for t in at.title] == ["Guide"]
    steps = [s.value for s in at.subheader]
    assert steps == [f"{s.number}. {s.title}" for s in L.tour()]
    assert len(at.get("plotly_chart")) >= 8  # a live view per step
    keys = {b.key for b in at.button}
    assert {f"guide.open.{s.slug}" for s in L.tour()} <= keys
    assert {f"guide.preset.{p.slug}" for p in L.presets()} <= keys
    assert "guide.preset.alignment-sensitive" in keys  # the tiny model's strategies disagree
    texts = "\n".join(m.value for m in at.markdown)
    for preset in L.presets():
        assert preset.line in texts
    assert "There is no shipped model yet" in texts  # failures labelled with their model
    assert "Failure, short (10-40 tokens)" in texts
    for lesson_id in L.lessons():
        assert f"?lesson={lesson_id})" in texts
    assert "http://localhost:8501/alignment?lesson=alignment-page" in texts


def test_failures_name_the_model_they_are_failures_of(monkeypatch):
    import rir_core.pretrained

    monkeypatch.setattr(rir_core.pretrained, "pretrained_available", lambda: True)
    at = _guide()
    texts = "\n".join(m.value for m in at.markdown)
    assert "Failures of the model in use, not the shipped one" in texts
    assert "untrained (random weights)" in texts


def _explorer_view(at: AppTest) -> tuple[str, int, int, int]:
    store = at.session_state[state.STORE]
    ss = at.session_state
    return (
        store["settings.expression"],
        int(ss["explorer.level"]),
        int(ss["explorer.chunk"]),
        int(ss["explorer.step"]),
    )


def test_every_tour_button_opens_its_state():
    at = _guide()
    for step in L.tour():
        if step.slug == "failure":
            continue  # model-dependent: below
        buttons = {f"guide.open.{step.slug}": step.view, f"guide.also.{step.slug}": step.also}
        for key, view in buttons.items():
            if view is None:
                continue
            at.switch_page(GUIDE).run()
            at.button(key=key).click().run()
            _ok(at)
            assert [t.value for t in at.title] == [TITLES[view.page]], key
            expression, level, chunk, step_no = _explorer_view(at)
            assert expression == view.expression, key
            width = at.session_state[state.STORE]["settings.chunk_width"]
            assert width == (view.chunk_width or 30), key
            if view.page == "explorer":
                assert (level, chunk, step_no) == (view.level, view.chunk, view.step), key
                assert _param(at, "level") == str(view.level)
                assert _param(at, "step") == str(view.step)
                assert at.text_input(key="settings.expression").value == view.expression


def test_the_failure_button_opens_a_wrong_answer():
    at = _guide()
    at.button(key="guide.open.failure").click().run()
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Prediction"] != metrics["Ground truth"]


def test_a_preset_button_opens_its_expression():
    at = _guide()
    at.button(key="guide.preset.chunk-crossing").click().run()
    _ok(at)
    assert at.text_input(key="settings.expression").value == L.chunk_crossing().expression
    assert "**Level 0** of 2" in "\n".join(m.value for m in at.markdown)


# --------------------------------------------------------------------------------------------
# Lesson links and teacher mode


def test_a_lesson_link_opens_its_state_once():
    view = L.lessons()["chunks"]
    at = _app(lesson="chunks")
    _ok(at)
    assert _explorer_view(at) == (view.expression, 0, 1, 1)
    assert _param(at, "lesson") is None  # replaced by the explicit parameters
    assert _param(at, "expr") == view.expression and _param(at, "chunk") == "1"
    at.button(key="explorer.step.next").click().run()  # later runs keep the user's moves
    assert _explorer_view(at) == (view.expression, 0, 1, 2)


def test_a_lesson_link_to_another_page():
    # AppTest starts on the default page; the browser test opens /alignment?lesson=... itself.
    at = _app(lesson="alignment-page")
    at.switch_page("pages/alignment.py").run()
    _ok(at)
    # The searched expression the shipped model's strategies disagree on (app/alignment_lesson).
    assert (
        at.text_input(key="settings.expression").value == L.lessons()["alignment-page"].expression
    )
    assert "Chunks C" in {m.label for m in at.metric}


def test_an_unknown_lesson_says_so():
    at = _app(lesson="nope")
    _ok(at)
    assert any("There is no lesson called 'nope'" in w.value for w in at.warning)
    assert at.text_input(key="settings.expression").value == state.DEFAULT_EXPRESSION


def test_teacher_mode_from_the_url_stays_on():
    at = _app(teacher="1")
    _ok(at)
    css = _styles(at)
    assert f"font-size: {teacher.ROOT_FONT_PX}px" in css
    for key in teacher.ADVANCED_KEYS:
        assert f".{teacher.css_class(key)}" in css
    assert _param(at, "teacher") == "1"  # the Explorer's link keeps it
    at.switch_page("pages/alignment.py").run()
    _ok(at)
    assert "font-size" in _styles(at) and _param(at, "teacher") == "1"

    off = _app(teacher="0")
    assert "font-size" not in _styles(off) and _param(off, "teacher") is None


def test_the_guide_toggle_turns_teacher_mode_on_and_off():
    at = _guide()
    assert not _styles(at)
    at.toggle(key="guide.teacher").set_value(True).run()
    _ok(at)
    assert "font-size" in _styles(at) and _param(at, "teacher") == "1"
    at.button(key="guide.open.tree").click().run()  # the Explorer opens in teacher mode
    assert "font-size" in _styles(at) and _param(at, "teacher") == "1"
    at.switch_page(GUIDE).run()
    at.toggle(key="guide.teacher").set_value(False).run()
    assert not _styles(at) and _param(at, "teacher") is None
