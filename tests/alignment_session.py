"""A worked beam-alignment debugging session in a real browser, step by step.

Used by ``tests/test_browser_alignment_lesson.py`` (which asserts on every step) and by
``python tests/alignment_screenshots.py`` (which saves the docs' screenshots of the same steps):
open the ``alignment-page`` lesson on the shipped model, read the four strategies' panels, the
slot table, the diff of two strategies, then force one pick and re-run the levels above.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

from browser import StreamlitServer, assert_no_exception, open_app, wait_for_app_idle

PORTS = range(8621, 8630)  # the ports this project's alignment sessions may use
LESSON_PATH = "alignment?lesson=alignment-page"
HEADER_PX = 64  # Streamlit's top bar


def _free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"ports {PORTS.start}-{PORTS.stop - 1} are all in use")


@contextlib.contextmanager
def shipped_model_server(tmp: Path) -> Iterator[StreamlitServer]:
    """``streamlit run app/main.py`` with the shipped model (RIR_APP_MODEL=auto), an empty runs
    folder, on the first free port of :data:`PORTS`; stopped on exit."""
    saved = {k: os.environ.get(k) for k in ("RIR_APP_MODEL", "RIR_RUNS_DIR")}
    os.environ["RIR_APP_MODEL"] = "auto"
    os.environ["RIR_RUNS_DIR"] = str(tmp / "runs")
    server = StreamlitServer(log_path=tmp / "server.log", port=_free_port())
    try:
        server.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield server
    finally:
        server.stop()


def wait_for_charts(page) -> None:
    """Wait until every plotly chart of the page has drawn (they draw after the script)."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
            .every((c) => c.querySelector('.main-svg'))""",
        polling=200,
    )


def scroll_to(page, heading: str) -> None:
    """Scroll the main area so that the first heading starting with ``heading`` is on top."""
    target = page.locator("h1, h2, h3").filter(has_text=heading).first
    target.wait_for(state="attached")
    target.evaluate(
        """(el, header) => {
            el.scrollIntoView({block: "start"});
            let box = el.parentElement;
            while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
            if (box) box.scrollBy(0, -header);
        }""",
        HEADER_PX,
    )
    wait_for_charts(page)
    page.wait_for_timeout(600)  # plotly re-draws after a scroll


def open_lesson(page, base_url: str) -> None:
    open_app(page, base_url, LESSON_PATH)
    assert_no_exception(page)


def panel_titles(page) -> list[str]:
    """The titles of the four-strategies figure's panels (its annotations), read in the
    browser."""
    chart = (
        page.get_by_test_id("stPlotlyChart")
        .filter(has=page.locator(".gtitle", has_text="The four strategies"))
        .first.locator(".js-plotly-plot")
    )
    return chart.evaluate("(el) => el.layout.annotations.map((a) => a.text)")


def panel_traces(page) -> list[str]:
    chart = (
        page.get_by_test_id("stPlotlyChart")
        .filter(has=page.locator(".gtitle", has_text="The four strategies"))
        .first.locator(".js-plotly-plot")
    )
    return chart.evaluate("(el) => el.data.map((t) => t.name)")


def answers(titles: list[str]) -> dict[str, int]:
    """``{"sample": 0, ...}`` from panel titles like ``▶ sample (sidebar): predicts 0 (…``."""
    out = {}
    for title in titles:
        m = re.search(r"(sample|rank|random|kbest)\b.*?predicts (\d)", title)
        assert m, title
        out[m.group(1)] = int(m.group(2))
    return out


def counterfactual(page, slot: int, chunk: int, beam: int, check: bool = True) -> None:
    """Fill the counterfactual's slot, chunk and beam, tick the full-run check, press Rerun."""
    scroll_to(page, "Counterfactual")
    for label, value in (("Slot", slot), ("Chunk", chunk), ("Beam", beam)):
        box = page.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
        wait_for_app_idle(page)
    if check:
        page.get_by_text("Also run the whole model with this choice forced").click()
        wait_for_app_idle(page)
    page.get_by_role("button", name="Rerun the levels above").click()
    wait_for_app_idle(page)
    assert_no_exception(page)
    scroll_to(page, "Counterfactual")
