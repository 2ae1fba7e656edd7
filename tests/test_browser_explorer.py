"""The Explorer page in a real browser: type, read the answer, step through levels and merges.

The server runs the tiny random model (RIR_APP_MODEL=random-small, see conftest.py).
Screenshots land in tests/_artifacts/explorer-*.png.
"""

import re

import pytest
from browser import assert_no_exception, save_screenshot, wait_for_app_idle

from rir_core.generate import Recipe, generate

# ~100 tokens: with the default chunk width W = 30 the outer recursion has two levels.
LONG_EXPRESSION = generate(Recipe(95, 105), 1, seed=7)[0].text


def _shot(page, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main area, so grow the viewport
    to the content's height first (charts re-layout on resize, hence the short wait)."""
    size = page.viewport_size
    height = page.evaluate(
        "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
    )
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 900), 8000)})
    page.wait_for_timeout(800)
    save_screenshot(page, name)
    page.set_viewport_size(size)


def _enter(page, text: str) -> None:
    box = page.get_by_label("ListOps expression", exact=True)
    box.fill(text)
    box.press("Enter")
    wait_for_app_idle(page)


def _metric(page, label: str) -> str:
    return page.get_by_test_id("stMetric").filter(has_text=label).first.inner_text()


@pytest.mark.browser
def test_answer_levels_and_steps(app_page):
    from playwright.sync_api import expect

    page = app_page
    expect(page.get_by_test_id("stMetric").filter(has_text="Prediction")).to_be_visible()
    assert "9" in _metric(page, "Ground truth")  # [MAX 2 9 [MIN 4 7 ] 0 ] = 9
    expect(page.get_by_text("untrained (random weights)").first).to_be_visible()
    assert_no_exception(page)
    _shot(page, "explorer-default")

    _enter(page, LONG_EXPRESSION)
    assert_no_exception(page)
    expect(page.get_by_text(re.compile(r"Level 0 of 2"))).to_be_visible()
    _shot(page, "explorer-long-level0")

    page.get_by_role("button", name="Next level").click()
    wait_for_app_idle(page)
    expect(page.get_by_text(re.compile(r"Level 1 of 2"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"Merge step 1 of \d+"))).to_be_visible()

    page.get_by_role("button", name="Next step").click()
    wait_for_app_idle(page)
    expect(page.get_by_text(re.compile(r"Merge step 2 of \d+"))).to_be_visible()
    assert_no_exception(page)
    assert "level=1" in page.url and "step=2" in page.url  # the link reproduces the view
    _shot(page, "explorer-long-level1-step2")

    # The expression and settings carry over to the Beam alignment page.
    page.get_by_role("link", name="Beam alignment").click()
    wait_for_app_idle(page)
    expect(page.get_by_role("heading", name="Beam alignment")).to_be_visible()
    expect(page.get_by_label("ListOps expression", exact=True)).to_have_value(LONG_EXPRESSION)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(2)
    assert_no_exception(page)
    _shot(page, "explorer-alignment-page")


@pytest.mark.browser
def test_malformed_expression_shows_the_caret(app_page):
    from playwright.sync_api import expect

    page = app_page
    _enter(page, "[MAX 2 9 [FOO 4 7 ] 0 ]")
    expect(page.get_by_text(re.compile("This is not a ListOps expression"))).to_be_visible()
    expect(page.get_by_text(re.compile("unknown token '\\[FOO'"))).to_be_visible()
    code = page.get_by_test_id("stCode").first.inner_text()
    line, caret = code.splitlines()[:2]
    assert line == "[MAX 2 9 [FOO 4 7 ] 0 ]"
    assert caret == " " * 9 + "^"  # under the [ of [FOO, character 9
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    assert_no_exception(page)
    _shot(page, "explorer-malformed")
