"""The Beam alignment and Depth bounds pages in a real browser (tiny random model, see conftest).

Screenshots land in tests/_artifacts/alignment-*.png and depth-*.png.
"""

import re
from urllib.parse import quote_plus

import pytest
from browser import assert_no_exception, open_app, wait_for_app_idle
from test_browser_explorer import _enter, _shot

# 16 tokens: with chunk width 4, four chunks and one alignment.
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (Streamlit's baseweb select)."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app_idle(page)


def _plot_traces(page, title: str) -> list[str]:
    """The trace names of the plotly chart whose title contains ``title``, read from the
    browser."""
    chart = (
        page.get_by_test_id("stPlotlyChart")
        .filter(has=page.locator(".gtitle", has_text=re.compile(re.escape(title))))
        .first.locator(".js-plotly-plot")
    )
    return chart.evaluate("(el) => el.data.map((t) => t.name)")


@pytest.mark.browser
def test_switching_strategies_updates_the_comparison(page, streamlit_app):
    from playwright.sync_api import expect

    open_app(page, streamlit_app, f"alignment?expr={quote_plus(CHUNKED)}&w=4&k=3&seed=0")
    assert_no_exception(page)
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="sample ◀ sidebar")).to_have_count(1)
    expect(page.get_by_text(re.compile(r"After level 0 \(sample\)"))).to_be_visible()
    assert {"chunk beams", "slots", "slot 0"} <= set(_plot_traces(page, "After level 0"))
    assert _plot_traces(page, "The four strategies") == [
        "picks sample",
        "picks rank",
        "picks random",
        "picks kbest",
    ]
    _shot(page, "alignment-sample")

    _choose(page, "Beam alignment", "kbest")
    assert_no_exception(page)
    expect(metrics.filter(has_text="kbest ◀ sidebar")).to_have_count(1)
    expect(metrics.filter(has_text="sample ◀ sidebar")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"After level 0 \(kbest\)"))).to_be_visible()
    expect(page.get_by_text("Diagnostics (kbest)")).to_be_visible()
    assert "align=kbest" in page.url

    page.get_by_role("button", name="Resample (new seed)").click()
    wait_for_app_idle(page)
    assert_no_exception(page)
    assert "seed=0" not in page.url  # a new seed, in the URL and in the comparison's caption
    seed = re.search(r"seed=(\d+)", page.url).group(1)
    expect(page.get_by_text(re.compile(rf"seed {seed} \(change it")).first).to_be_visible()

    page.get_by_role("button", name="Run over the seeds").click()
    wait_for_app_idle(page)
    assert_no_exception(page)
    expect(page.get_by_text(re.compile(r"Predictions over 20 seeds"))).to_be_visible()
    _shot(page, "alignment-kbest-seeds")


@pytest.mark.browser
def test_depth_lab_marks_the_current_expression(page, streamlit_app):
    from playwright.sync_api import expect

    open_app(page, streamlit_app, "?w=4&k=3")
    _enter(page, CHUNKED)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Depth bounds").click()
    wait_for_app_idle(page)
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Depth bounds")).to_be_visible()
    expect(page.get_by_label("ListOps expression", exact=True)).to_have_value(CHUNKED)
    # The chart carries the star at (16 tokens, 6 measured merges), named in its legend.
    star = (
        page.get_by_test_id("stPlotlyChart")
        .first.locator(".js-plotly-plot")
        .evaluate(
            "(el) => el.data.filter((t) => t.name.startsWith('this expression'))"
            ".map((t) => [t.x[0], t.y[0], t.marker.symbol])"
        )
    )
    assert star == [[16, 6, "star"]]
    expect(page.get_by_text("this expression (16 tokens, 6 steps)")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # the numbers (a canvas)
    _shot(page, "depth-lab")
