"""The alignment-page lesson in a real browser, on the SHIPPED model: the four strategies'
pictures with differing answers, the diff, and a counterfactual that flips the answer.

Screenshots land in tests/_artifacts/alignment-lesson-*.png.
"""

from __future__ import annotations

import pytest
from alignment_session import (
    answers,
    counterfactual,
    open_lesson,
    panel_titles,
    panel_traces,
    scroll_to,
    shipped_model_server,
)
from browser import assert_no_exception
from test_browser_explorer import _shot

from rir_core.pretrained import pretrained_available

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not pretrained_available(), reason="no shipped model in pretrained/"),
]


@pytest.fixture(scope="module")
def shipped_app(chromium, tmp_path_factory):
    with shipped_model_server(tmp_path_factory.mktemp("shipped")) as server:
        yield server.url


@pytest.fixture(scope="module")
def case():
    from app.alignment_lesson import lesson_case

    found = lesson_case()
    assert found is not None
    return found


def flipping_force(case):
    """The first forced pick of the lesson's 'sample' run (slot, chunk, beam order) whose re-run
    changes the answer, and that answer: towards the truth when 'sample' is wrong, away from it
    when 'sample' is right. Found with the shipped model, not written down."""
    from app.alignment_lesson import first_flip
    from rir_core.pretrained import load_pretrained

    found = first_flip(load_pretrained(), case.expression, case.label, case.predictions["sample"])
    if found is None:
        raise AssertionError(
            "no single forced pick changes 'sample''s answer on this lesson: re-pick it "
            "(python -m app.alignment_lesson), the docs' worked session needs one"
        )
    return found


def test_the_lesson_shows_four_pictures_with_differing_answers(page, shipped_app, case):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 1000})
    open_lesson(page, shipped_app)
    assert panel_traces(page) == ["picks sample", "picks rank", "picks random", "picks kbest"]
    titles = panel_titles(page)
    seen = answers(titles)
    assert seen == case.predictions
    assert len(set(seen.values())) > 1  # the strategies disagree on the lesson
    assert all(f"truth {case.label}" in t for t in titles)
    assert "(sidebar)" in titles[0]  # the lesson opens with the paper's 'sample'
    expect(page.get_by_text(f"Ground truth: {case.label}.")).to_be_visible()
    scroll_to(page, "The four strategies side by side")
    page.screenshot(path=str(_artifact("alignment-lesson-four")))

    # The diff opens on the sidebar's strategy against one that answers differently.
    scroll_to(page, "Diff of two strategies")
    expect(page.locator(".gtitle").filter(has_text="Final beam weights: A = sample")).to_have_count(
        1
    )
    page.screenshot(path=str(_artifact("alignment-lesson-diff")))

    # Force a pick that changes 'sample''s answer; the full run agrees exactly.
    force, answer = flipping_force(case)
    counterfactual(page, force.slot, force.chunk, force.beam)
    forced = page.get_by_test_id("stMetric").filter(has_text="Forced")
    expect(forced.get_by_test_id("stMetricValue")).to_have_text(str(answer))
    expect(page.get_by_text("answer changed")).to_be_visible()
    expect(page.get_by_text("gives exactly the same logits", exact=False)).to_be_visible()
    assert_no_exception(page)
    page.screenshot(path=str(_artifact("alignment-lesson-counterfactual")))
    _shot(page, "alignment-lesson-page")


def _artifact(name: str):
    from browser import ARTIFACTS_DIR

    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR / f"{name}.png"
