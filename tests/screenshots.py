"""Take the README's tour screenshots from the real app in a real browser.

    python tests/screenshots.py --out docs/images            # the app's default model
    python tests/screenshots.py --out /tmp/shots --model random-small

Starts ``streamlit run app/main.py`` and a headless system Chromium with the browser-test
helpers (``tests/browser.py``), opens each view by its lesson link (``app/lessons.py``),
scrolls to the part the README talks about and saves a 1280 x 800 PNG (1280 x 720 for the
projector shot). Look at every image
before you commit it: the script only checks that each page ran without an exception.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ (browser.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root (app, rir_core)

from browser import (  # noqa: E402
    CHROMIUM_ARGS,
    StreamlitServer,
    assert_no_exception,
    browser_unavailable_reason,
    find_chromium,
    open_app,
    wait_for_app_idle,
)

VIEWPORT = {"width": 1280, "height": 800}
SETTLE_MS = 1200  # plotly draws (and re-draws after a scroll) after the script is idle
HEADER_PX = 64  # Streamlit's top bar covers this much of the page


@dataclass(frozen=True)
class Shot:
    name: str  # the PNG's file name, without .png
    path: str  # page and query string, e.g. "?lesson=chunks"
    heading: str | None = None  # scroll this heading to the top; None: the page's top
    what: str = ""
    pick: tuple[str, str] | None = None  # (select box label, option) to choose first
    viewport: dict[str, int] | None = None  # None: VIEWPORT


SHOTS = (
    Shot("explorer", "", None, "the Explorer: an expression and the answer"),
    Shot("trees", "?lesson=chunk-crossing", "Trees", "gold and model trees, chunk boundaries"),
    Shot("outer-levels", "?lesson=chunks", "Outer recursion", "chunk levels of ~100 tokens"),
    Shot("beam-search", "?lesson=beams", "Inner recursion", "one merge step of the beam search"),
    Shot("alignment", "alignment?lesson=alignment-page", None, "the Beam alignment page"),
    Shot("depth", "depth?lesson=bound-page", None, "the Depth bounds page"),
    Shot("training", "training", None, "the Training page: presets, settings, estimate"),
    Shot("guide", "guide", None, "the Guide's tour"),
    Shot("teacher-mode", "?lesson=chunks&teacher=1", "Outer recursion", "teacher mode"),
    Shot(
        "trees-teacher",
        "?lesson=very-long&teacher=1",
        None,
        "979 tokens on a 1280x720 projector: both trees over one chunk",
        pick=("Show", "chunk 9: tokens 270-299"),
        viewport={"width": 1280, "height": 720},
    ),
)


def scroll_to_heading(page, text: str) -> None:
    """Scroll the main area so that the first heading starting with ``text`` is at the top."""
    heading = page.locator("h1, h2, h3").filter(has_text=text).first
    heading.wait_for(state="attached")
    heading.evaluate(
        """(el, header) => {
            el.scrollIntoView({block: "start"});
            let box = el.parentElement;
            while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
            if (box) box.scrollBy(0, -header);
        }""",
        HEADER_PX,
    )


def take(page, base_url: str, shot: Shot, out: Path) -> Path:
    page.set_viewport_size(shot.viewport or VIEWPORT)
    open_app(page, base_url, shot.path)
    wait_for_app_idle(page)
    assert_no_exception(page)
    if shot.pick:
        label, option = shot.pick
        box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
        box.scroll_into_view_if_needed()
        box.get_by_role("combobox").click()
        page.get_by_role("option", name=option, exact=True).click()
        wait_for_app_idle(page)
        assert_no_exception(page)
        if not shot.heading:  # the select box's row at the top, what it drew below
            page.get_by_test_id("stSelectbox").filter(has_text=label).first.evaluate(
                """(el, header) => {
                    el.scrollIntoView({block: "start"});
                    let box = el.parentElement;
                    while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
                    if (box) box.scrollBy(0, -header);
                }""",
                HEADER_PX + 60,  # and its label
            )
            page.wait_for_timeout(SETTLE_MS)
    if shot.heading:
        scroll_to_heading(page, shot.heading)
    page.wait_for_timeout(SETTLE_MS)
    path = out / f"{shot.name}.png"
    page.screenshot(path=str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/screenshots.py", description=__doc__)
    parser.add_argument("--out", default="docs/images", help="folder for the PNGs")
    parser.add_argument(
        "--model",
        default=os.environ.get("RIR_APP_MODEL", "auto"),
        help="RIR_APP_MODEL of the app: auto (the shipped model, default), random, "
        "random-small or a checkpoint directory",
    )
    parser.add_argument("--only", nargs="*", help="take only these shots (names)")
    args = parser.parse_args(argv)

    reason = browser_unavailable_reason()
    if reason is not None:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shots = [s for s in SHOTS if not args.only or s.name in args.only]

    from playwright.sync_api import sync_playwright

    os.environ["RIR_APP_MODEL"] = args.model
    with tempfile.TemporaryDirectory() as tmp:
        server = StreamlitServer(log_path=Path(tmp) / "server.log")
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(find_chromium()), headless=True, args=list(CHROMIUM_ARGS)
                )
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                page.set_default_timeout(120_000)
                for shot in shots:
                    start = time.monotonic()
                    path = take(page, server.url, shot, out)
                    print(f"{path}  ({shot.what}; {time.monotonic() - start:.1f} s)")
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
