"""Lesson links in a real browser: each opens the page, expression and step it promises.

The server runs the tiny random model (RIR_APP_MODEL=random-small, see conftest.py): a lesson's
chunks, levels and steps depend on the expression and the settings, not on the weights.
A failing link leaves tests/_artifacts/lesson-ID.png.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from browser import assert_no_exception, open_app, save_screenshot, wait_for_app_idle

from app import lessons as L
from app import teacher

HEADINGS = {
    "explorer": "RIR Explorer",
    "alignment": "Beam alignment",
    "depth": "Depth bounds",
    "guide": "Guide",
}


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _check_view(page, view: L.View, name: str) -> None:
    """The page shows ``view``: its heading, its expression, and the Explorer's level, chunk
    and step (the Explorer writes what it shows into the address)."""
    from playwright.sync_api import expect

    try:
        assert_no_exception(page)
        expect(page.get_by_role("heading", name=HEADINGS[view.page], exact=True)).to_be_visible()
        box = page.get_by_label("ListOps expression", exact=True)
        if view.page != "depth" or box.count():
            expect(box).to_have_value(view.expression)
        if view.page == "explorer":
            query = _query(page)
            assert query["expr"] == view.expression
            if view.chunk_width is not None:
                assert query["w"] == str(view.chunk_width)
            level, chunk, step = view.level or 0, view.chunk or 0, view.step or 1
            assert (query["level"], query["chunk"], query["step"]) == tuple(
                map(str, (level, chunk, step))
            )
            expect(page.get_by_text(re.compile(rf"Level {level}\b")).first).to_be_visible()
            expect(
                page.get_by_text(re.compile(rf"Merge step {step} of \d+ in chunk {chunk} "))
            ).to_be_visible()
    except AssertionError:
        save_screenshot(page, f"lesson-{name}", full_page=False)
        raise


@pytest.mark.browser
@pytest.mark.slow
def test_every_short_lesson_link_opens_its_state(page, streamlit_app):
    """``/PAGE?lesson=ID`` in a new session: every named lesson (the tour's and the gallery's)."""
    for lesson_id, view in L.lessons().items():
        open_app(page, streamlit_app, L.lesson_url(lesson_id))
        _check_view(page, view, lesson_id)
        assert "lesson" not in _query(page) or view.page == "depth"


@pytest.mark.browser
def test_an_explicit_link_opens_its_state_in_teacher_mode(page, streamlit_app):
    from playwright.sync_api import expect

    view = L.lessons()["chunks"]
    open_app(page, streamlit_app, view.url(teacher=True))
    _check_view(page, view, "chunks-explicit")
    assert _query(page)["teacher"] == "1"
    root_font = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
    assert root_font == f"{teacher.ROOT_FONT_PX}px"
    # The sidebar starts collapsed (its 300 px go to the lesson, #18 item 6); opened, it shows
    # the lesson's settings, and the advanced controls stay hidden.
    beam_size = page.locator(f".{teacher.css_class('settings.beam_size')}")
    expect(beam_size).not_to_be_in_viewport()
    page.get_by_test_id("stExpandSidebarButton").click()
    expect(beam_size).to_be_visible()
    for key in ("settings.seed", "explorer.random", "explorer.downloads"):
        expect(page.locator(f".{teacher.css_class(key)}")).to_be_attached()
        expect(page.locator(f".{teacher.css_class(key)}")).to_be_hidden()
    expect(page.get_by_role("heading", name="Downloads")).to_be_hidden()  # no empty heading

    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Beam alignment", exact=True).click()  # teacher mode stays on
    wait_for_app_idle(page)
    assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == (
        f"{teacher.ROOT_FONT_PX}px"
    )
    expect(page.get_by_label("ListOps expression", exact=True)).to_have_value(view.expression)


@pytest.mark.browser
def test_a_guide_button_opens_the_explorer_at_its_step(page, streamlit_app):
    step = next(s for s in L.tour() if s.slug == "beams")
    open_app(page, streamlit_app, "guide")
    assert_no_exception(page)
    page.locator(f".{teacher.css_class('guide.open.beams')} button").click()
    wait_for_app_idle(page)
    _check_view(page, step.view, "guide-beams")
    assert urlsplit(page.url).path == "/"


def _top_in_view(page, anchor: str) -> float:
    """Where the heading with ``anchor`` is, in px from the top of the window."""
    return page.evaluate(f"() => document.getElementById({anchor!r}).getBoundingClientRect().top")


# The heading is in view: in the top 40% of the window (a last section shorter than the window
# cannot reach the top; the bug was a heading 2,350 px, 3.3 screens, down).
IN_VIEW_JS = """(anchor) => {
    const el = document.getElementById(anchor);
    if (!el) return false;
    const top = el.getBoundingClientRect().top;
    return top >= 0 && top < 0.4 * window.innerHeight;
}"""


def _wait_in_view(page, anchor: str, name: str) -> None:
    """The heading ``anchor`` comes to the top of the window (under the header) and stays."""
    try:
        page.wait_for_function(IN_VIEW_JS, arg=anchor, polling=200, timeout=20_000)
        page.wait_for_timeout(2000)  # charts above it have drawn by now: it must stay
        assert page.evaluate(IN_VIEW_JS, anchor), f"{anchor} at {_top_in_view(page, anchor)} px"
    except Exception:
        save_screenshot(page, f"lesson-scroll-{name}", full_page=False)
        raise


@pytest.mark.browser
@pytest.mark.slow
def test_lesson_links_open_on_their_section_in_teacher_mode_at_720p(page, streamlit_app):
    """#18 item 2: at 1280x720 in teacher mode, a lesson link opens with its subject in view,
    not at the top of a long page; the tree lesson shows both trees side by side, one screen."""
    page.set_viewport_size({"width": 1280, "height": 720})
    opened = 0
    for lesson_id, view in L.lessons().items():
        if view.page != "explorer" or view.section is None:
            continue
        open_app(page, streamlit_app, L.lesson_url(lesson_id, teacher=True))
        assert_no_exception(page)
        _wait_in_view(page, view.section, lesson_id)
        opened += 1
        if lesson_id == "tree":
            charts = page.get_by_test_id("stPlotlyChart")
            gold = charts.filter(has_text="Gold tree").first.bounding_box()
            model = charts.filter(has_text="Model tree").first.bounding_box()
            for box in (gold, model):  # wholly on screen
                assert box["y"] >= 0 and box["y"] + box["height"] <= 720, box
            assert abs(gold["y"] - model["y"]) < 2 and gold["x"] + gold["width"] <= model["x"]
            assert abs(gold["height"] - model["height"]) < 2  # one scale
            save_screenshot(page, "lesson-tree-720p", full_page=False)
        if lesson_id == "beams":
            save_screenshot(page, "lesson-beams-720p", full_page=False)
    assert opened >= 8


@pytest.mark.browser
def test_a_guide_button_opens_the_explorer_on_its_section(page, streamlit_app):
    open_app(page, streamlit_app, "guide")
    page.locator(f".{teacher.css_class('guide.open.beams')} button").click()
    wait_for_app_idle(page)
    _wait_in_view(page, "inner-recursion", "guide-button-beams")


@pytest.mark.browser
def test_guide_step_2_is_legible_in_teacher_mode_at_720p(page, streamlit_app):
    """#18 item 6: the depth step's legend was printed over the x-axis title and its metric
    labels were cut ("One merge a...") at teacher-mode sizes on a 1280x720 projector."""
    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, streamlit_app, "guide?teacher=1")
    assert_no_exception(page)
    step = page.locator(f".{teacher.css_class('guide.step.depth')}")
    step.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    labels = step.get_by_test_id("stMetricLabel")
    assert labels.count() == 3
    for i in range(3):
        cut = labels.nth(i).evaluate(
            "(el) => [...el.querySelectorAll('*')].concat([el])"
            ".some((e) => e.scrollWidth > e.clientWidth + 1)"
        )
        assert not cut, labels.nth(i).inner_text()
    chart = step.get_by_test_id("stPlotlyChart")
    legend, title = (
        chart.locator(".legend").bounding_box(),
        chart.locator(".g-xtitle").bounding_box(),
    )
    apart = (
        legend["y"] + legend["height"] <= title["y"]
        or title["y"] + title["height"] <= legend["y"]
        or legend["x"] + legend["width"] <= title["x"]
        or title["x"] + title["width"] <= legend["x"]
    )
    assert apart, (legend, title)
    save_screenshot(page, "guide-step2-teacher-720p", full_page=False)
