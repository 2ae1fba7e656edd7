"""The Explorer page in a real browser: type, read the answer, step through levels and merges.

The server runs the tiny random model (RIR_APP_MODEL=random-small, see conftest.py).
Screenshots land in tests/_artifacts/explorer-*.png.
"""

import re
from urllib.parse import quote_plus

import pytest
from browser import (
    StreamlitServer,
    assert_no_exception,
    open_app,
    save_screenshot,
    wait_for_app_idle,
)

from rir_core.generate import Recipe, generate

# ~100 tokens: with the default chunk width W = 30 the outer recursion has two levels.
LONG_EXPRESSION = generate(Recipe(95, 105), 1, seed=7)[0].text
# 16 tokens: with chunk width 4, four chunks and one alignment.
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"


def _shot(page, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main area, so grow the viewport
    to the content's height first (charts re-layout on resize, hence the short wait)."""
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 900), 8000)})
    page.wait_for_timeout(800)
    save_screenshot(page, name)
    page.set_viewport_size(size)


def _click_outer_figure(page, token: int, level: int) -> None:
    """Click the outer-recursion figure on the node over ``token``."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 4000})  # no scrolling needed
    page.wait_for_timeout(500)
    chart = page.get_by_test_id("stPlotlyChart").filter(has_text="Outer recursion")
    chart = chart.locator(".js-plotly-plot")
    x, y = chart.evaluate(
        """(el, [token, level]) => {
            const layout = el._fullLayout, box = el.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.l2p(token),
                    box.top + layout._size.t + layout.yaxis.l2p(level)];
        }""",
        [token, level],
    )
    page.mouse.click(x, y)
    wait_for_app_idle(page)
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

    # A click on a node of the outer figure picks its chunk (token 75 is in chunk 2, [60, 90)).
    _click_outer_figure(page, token=75, level=0)
    expect(page.get_by_text(re.compile(r"in chunk 2 of level 0"))).to_be_visible()

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
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Beam alignment").click()
    wait_for_app_idle(page)
    expect(page.get_by_role("heading", name="Beam alignment")).to_be_visible()
    expect(page.get_by_label("ListOps expression", exact=True)).to_have_value(LONG_EXPRESSION)
    # The four strategies' panels first; the detailed picture and a diff chart follow.
    expect(page.get_by_text("The four strategies side by side")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    assert page.get_by_test_id("stPlotlyChart").count() >= 2
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


@pytest.mark.browser
def test_a_link_to_a_page_works_on_a_fresh_server(page, tmp_path, monkeypatch):
    """Streamlit runs a page alone (legacy pages/ mode) until the router ran once in the server
    process: the page must route itself (state.ensure_router), settings from the URL and all."""
    from playwright.sync_api import expect

    monkeypatch.setenv("RIR_APP_MODEL", "random-small")
    server = StreamlitServer(log_path=tmp_path / "server.log")
    server.start()
    try:
        open_app(page, server.url, f"alignment?expr={quote_plus(CHUNKED)}&w=4&k=3")
        assert_no_exception(page)
        expect(page.get_by_role("heading", name="Beam alignment")).to_be_visible()
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav.get_by_role("link", name="Explorer")).to_be_visible()  # the router's menu
        expect(nav.get_by_role("link", name="main")).to_have_count(0)  # not the legacy one
        expect(page.get_by_label("ListOps expression", exact=True)).to_have_value(CHUNKED)
        expect(page.get_by_text("Combinations K^C")).to_be_visible()
    finally:
        server.stop()


@pytest.mark.browser
def test_downloads_trace_and_trees(app_page):
    import json
    from pathlib import Path

    page = app_page
    with page.expect_download() as info:
        page.get_by_role("button", name="Trace (JSON)").click()
    download = info.value
    assert download.suggested_filename == "rir-trace-9tok-k7-w30-sample-seed0.json"
    trace = json.loads(Path(download.path()).read_text())
    assert " ".join(trace["tokens"]) == "[MAX 2 9 [MIN 4 7 ] 0 ]" and trace["ground_truth"] == 9
    assert {"levels", "final_beams", "depth", "probabilities"} <= set(trace)

    # Both trees' buttons (gold first, then the chosen beam's): under load the page may still
    # be drawing the second section, and .first must not be taken before it is complete.
    from playwright.sync_api import expect

    dots = page.get_by_role("button", name="DOT (Graphviz)")
    expect(dots).to_have_count(2)
    with page.expect_download() as info:
        dots.first.click()
    dot = Path(info.value.path()).read_text()
    assert info.value.suggested_filename.endswith("-gold.dot") and "MAX=9" in dot
    with page.expect_download() as info:
        page.get_by_role("button", name="GraphML").last.click()
    assert info.value.suggested_filename.endswith(".graphml")
    assert "<graphml" in Path(info.value.path()).read_text()
    assert_no_exception(page)


@pytest.mark.browser
def test_a_thousand_tokens_stay_usable(page, streamlit_app):
    """Compact trees (small subtrees collapsed) and per-chunk level summaries keep it light."""
    from playwright.sync_api import expect

    text = generate(Recipe(950, 1000), 1, seed=7)[0].text
    open_app(page, streamlit_app, f"?expr={quote_plus(text)}")
    assert_no_exception(page)
    expect(
        page.get_by_text(re.compile(r"Gold tree \(from the parser\) · subtrees under"))
    ).to_be_visible()
    charts = page.get_by_test_id("stPlotlyChart")
    outer = charts.filter(has_text="Outer recursion").locator(".js-plotly-plot")
    level0 = outer.evaluate("(el) => el.data.find((t) => t.name === 'level 0').x.length")
    assert level0 == 33  # one box per chunk, not one per token
    final = charts.filter(has_text="Model tree").locator(".js-plotly-plot")
    drawn = final.evaluate("(el) => el.data.find((t) => t.name === 'internal nodes').x.length")
    assert drawn <= 500
    page.get_by_role("button", name="Next step").click()
    wait_for_app_idle(page)
    expect(page.get_by_text(re.compile(r"Merge step 2 of 29"))).to_be_visible()
    assert_no_exception(page)
    _shot(page, "explorer-1000-tokens")


def _merge_step(page) -> int:
    text = page.get_by_text(re.compile(r"Merge step \d+ of \d+ in chunk")).inner_text()
    return int(re.search(r"Merge step (\d+) of", text).group(1))


@pytest.mark.browser
def test_autoplay_advances_on_its_own(page, streamlit_app):
    """Switched on, autoplay steps the merges by itself: nothing else is clicked (#18: the
    toggle showed on and the counter stood still until an unrelated rerun)."""
    from playwright.sync_api import expect

    open_app(page, streamlit_app, "?lesson=beams")
    start = _merge_step(page)
    page.get_by_text("Autoplay (a merge step every").click()
    seen = [start]
    for _ in range(40):  # up to 10 s; a step is due every 1.5 s
        page.wait_for_timeout(250)
        step = _merge_step(page)
        if step != seen[-1]:
            seen.append(step)
        if len(seen) >= 4:
            break
    assert seen[:4] == [start, start + 1, start + 2, start + 3], seen
    # Switched off, it stays where it is, and the address (written a moment after the view,
    # so it can trail a playing counter by a step) settles on the step shown.
    page.get_by_text("Autoplay (a merge step every").click()
    wait_for_app_idle(page)
    stopped = _merge_step(page)
    page.wait_for_timeout(3500)
    assert _merge_step(page) == stopped
    expect(page.get_by_text(re.compile(rf"Merge step {stopped} of"))).to_be_visible()
    assert re.search(rf"[?&]step={stopped}(&|$)", page.url), (stopped, page.url)
    assert_no_exception(page)


@pytest.mark.browser
def test_clicking_a_chunk_scrolls_to_its_beam_search(page, streamlit_app):
    """#18 item 9: a click on a chunk of the outer figure picks it and brings the inner
    recursion (its beam search) to the top of the window."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, streamlit_app, f"?expr={quote_plus(LONG_EXPRESSION)}")
    chart = page.get_by_test_id("stPlotlyChart").filter(has_text="Outer recursion")
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    plot = chart.locator(".js-plotly-plot")
    x, y = plot.evaluate(
        """(el) => {
            const layout = el._fullLayout, box = el.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.l2p(75),
                    box.top + layout._size.t + layout.yaxis.l2p(0)];
        }"""
    )
    page.mouse.click(x, y)
    wait_for_app_idle(page)
    expect(page.get_by_text(re.compile(r"in chunk 2 of level 0"))).to_be_visible()
    page.wait_for_function(
        """() => {
            const top = document.getElementById("inner-recursion").getBoundingClientRect().top;
            return top >= 0 && top < 160;
        }""",
        polling=200,
        timeout=15_000,
    )
    assert_no_exception(page)


def _x_pixels(chart, xs: list[float]) -> list[float]:
    """Where the token positions ``xs`` are drawn on a plotly chart, in window pixels."""
    return chart.locator(".js-plotly-plot").evaluate(
        """(el, xs) => {
            const layout = el._fullLayout, box = el.getBoundingClientRect();
            return xs.map((x) => box.left + layout._size.l + layout.xaxis.l2p(x));
        }""",
        xs,
    )


@pytest.mark.browser
@pytest.mark.parametrize("teacher_mode", [False, True])
def test_beam_rows_and_pair_heat_line_up_by_token(page, streamlit_app, teacher_mode):
    """#18 item 5: the two beam-search figures put every token at the same x on screen, at the
    lesson's step 3 and at step 1 (one beam row, where the colour bar used to be squashed)."""
    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, streamlit_app, "?lesson=beams" + ("&teacher=1" if teacher_mode else ""))
    charts = page.get_by_test_id("stPlotlyChart")
    for step in ("3", "1"):
        if step == "1":
            for _ in range(2):
                page.get_by_role("button", name="Previous step").click()
                wait_for_app_idle(page)
        rows = charts.filter(has_text="Beams before this merge")
        heat = charts.filter(has_text="Pair probabilities per beam")
        rows.scroll_into_view_if_needed()
        page.wait_for_timeout(600)
        xs = [-0.5, 5.5, 12.5]
        assert _x_pixels(rows, xs) == pytest.approx(_x_pixels(heat, xs), abs=1.5)
    heat.scroll_into_view_if_needed()
    page.wait_for_timeout(600)
    save_screenshot(page, f"beam-figures-step1{'-teacher' if teacher_mode else ''}", False)
    assert_no_exception(page)


def _tree_chart(page, title: str):
    return page.get_by_test_id("stPlotlyChart").filter(has_text=title).locator(".js-plotly-plot")


def _open_select(page, box) -> None:
    """Open a Streamlit selectbox's list (a click while the page settles can be lost)."""
    for _ in range(3):
        box.get_by_role("combobox").click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
            return
        except Exception:  # noqa: BLE001 - not open yet: click again
            page.keyboard.press("Escape")
    page.get_by_role("option").first.wait_for()


def _overlapping_labels(chart) -> list:
    """Pairs of node labels whose drawn boxes overlap (as the browser laid them out)."""
    return chart.evaluate(
        """(el) => {
            const boxes = [...el.querySelectorAll(".scatterlayer text")]
              .filter((t) => t.textContent.trim())
              .map((t) => [t.textContent, t.getBoundingClientRect()]);
            const out = [];
            for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
              const [a, p] = boxes[i], [b, q] = boxes[j];
              if (p.left < q.right - 1 && q.left < p.right - 1 && p.top < q.bottom - 1
                  && q.top < p.bottom - 1) out.push([a, b]);
            }
            return [out, boxes.length, boxes.length ? getComputedStyle(boxes[0][0] && el
              .querySelector(".scatterlayer text")).fontSize : null];
        }"""
    )


@pytest.mark.browser
def test_a_thousand_token_tree_on_a_projector(page, streamlit_app):
    """#18 item 4: at 1280x720 in teacher mode the 1,000-token trees' labels are 16 px and none
    is written over another; 'Show' draws one chunk with every node and its tokens, and a click
    on a collapsed triangle opens that subtree."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 720})
    text = generate(Recipe(950, 1000), 1, seed=7)[0].text
    open_app(page, streamlit_app, f"?expr={quote_plus(text)}&teacher=1")
    assert_no_exception(page)
    gold = _tree_chart(page, "Gold tree")
    for title in ("Gold tree", "Model tree"):
        overlaps, n_labels, size = _overlapping_labels(_tree_chart(page, title))
        assert not overlaps, (title, overlaps[:5])
        if title == "Gold tree":
            assert n_labels >= 10 and size == "16px"

    # One chunk: every node of it drawn (nothing collapsed), its tokens on the axis.
    show = page.get_by_test_id("stSelectbox").filter(has_text="Show")
    _open_select(page, show)
    options = page.get_by_role("option").all_inner_texts()
    assert options[0].startswith("the whole input") and options[1].startswith("chunk 0: tokens")
    page.get_by_role("option", name=options[4]).click()
    wait_for_app_idle(page)
    lo, hi = map(int, re.search(r"tokens (\d+)-(\d+)", options[4]).groups())
    for title in ("Gold tree", "Model tree"):
        chart = _tree_chart(page, title)
        expect(chart).to_contain_text(f"tokens {lo}-{hi}")
        names = chart.evaluate("(el) => el.data.map((t) => t.name)")
        assert "collapsed subtrees" not in names
        ticks = chart.evaluate("(el) => el._fullLayout.xaxis.ticktext")
        assert ticks == text.split()[lo : hi + 1]
        overlaps, _, _ = _overlapping_labels(chart)
        assert not overlaps, (title, overlaps[:5])
    page.wait_for_timeout(800)
    gold.scroll_into_view_if_needed()
    save_screenshot(page, "explorer-1000-tokens-chunk-teacher", full_page=False)

    # Back to the whole input, then click a collapsed triangle: its subtree opens.
    _open_select(page, show)
    page.get_by_role("option", name=options[0]).click()  # the whole input
    wait_for_app_idle(page)
    gold = _tree_chart(page, "Gold tree")
    gold.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    x, y, span = gold.evaluate(
        """(el) => {
            const t = el._fullData.find((d) => d.name === "internal nodes");
            const symbols = Array.isArray(t.marker.symbol) ? t.marker.symbol : [];
            let best = -1;
            symbols.forEach((s, i) => {
              if (s === "triangle-up" && (best < 0 || t.customdata[i][1] - t.customdata[i][0]
                  > t.customdata[best][1] - t.customdata[best][0])) best = i;
            });
            const layout = el._fullLayout, box = el.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.l2p(t.x[best]),
                    box.top + layout._size.t + layout.yaxis.l2p(t.y[best]), t.customdata[best]];
        }"""
    )
    page.mouse.click(x, y)
    wait_for_app_idle(page)
    expect(_tree_chart(page, "Gold tree")).to_contain_text(f"tokens {span[0]}-{span[1] - 1}")
    expect(show.get_by_role("combobox")).to_have_value(f"tokens {span[0]}-{span[1] - 1}")
    assert_no_exception(page)
