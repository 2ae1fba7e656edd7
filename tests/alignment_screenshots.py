"""Take the screenshots of docs/alignment_debugging.md: a worked debugging session on the
shipped model, in a real browser.

    python tests/alignment_screenshots.py --out docs/images

Opens the ``alignment-page`` lesson (app/alignment_lesson.py), saves the four strategies' panels,
the slot table, the diff of sample and kbest, a counterfactual (the sample slot pick furthest
below its chunk's best beam, forced to that best beam) and the 33-chunk view of a 979-token
expression, and dataset mode on 60 generated expressions. Look at every image before you commit it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ (browser.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root

from alignment_session import (  # noqa: E402
    counterfactual,
    open_lesson,
    scroll_to,
    shipped_model_server,
)
from browser import (  # noqa: E402
    CHROMIUM_ARGS,
    assert_no_exception,
    browser_unavailable_reason,
    find_chromium,
    open_app,
    wait_for_app_idle,
)

VIEWPORT = {"width": 1280, "height": 900}


def furthest_pick(expression: str):
    """(slot, chunk, best beam, taken beam, gap) of the lesson's 'sample' run: the slot pick
    furthest below its chunk's best beam."""
    from app import alignment_compare as C
    from rir_core.pretrained import load_pretrained

    trace = load_pretrained().trace(expression, seed=0, chunk_width=30, alignment="sample")
    al = trace.levels[0]["alignment"]
    picks = [(g, i.slot, c, b) for i in C.slot_infos(al) for c, b, _, g in i.non_best]
    gap, slot, chunk, beam = min(picks)
    return slot, chunk, al["best_combination"][chunk], beam, gap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/alignment_screenshots.py")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args(argv)
    reason = browser_unavailable_reason()
    if reason is not None:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from app.alignment_lesson import lesson_case
    from app.lessons import very_long_expression

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    case = lesson_case()
    slot, chunk, best, taken, gap = furthest_pick(case.expression)
    print(f"force: slot {slot}, chunk {chunk}: beam {taken} ({gap:+.4f}) -> beam {best}")

    def shot(page, name: str, heading: str | None) -> None:
        if heading:
            scroll_to(page, heading)
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / f"{name}.png"))
        print(out / f"{name}.png")

    with (
        tempfile.TemporaryDirectory() as tmp,
        shipped_model_server(Path(tmp)) as server,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(
            executable_path=str(find_chromium()), headless=True, args=list(CHROMIUM_ARGS)
        )
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(180_000)
        start = time.monotonic()
        open_lesson(page, server.url)
        shot(page, "alignment-debug-1-four", "The four strategies side by side")
        shot(page, "alignment-debug-2-slots", "Slot by slot")
        shot(page, "alignment-debug-3-diff", "Diff of two strategies")
        counterfactual(page, slot, chunk, best)
        shot(page, "alignment-debug-4-counterfactual", "Counterfactual")
        print(f"lesson session: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        path = f"alignment?expr={quote_plus(very_long_expression())}&w=30&seed=0"
        open_app(page, server.url, path)
        assert_no_exception(page)
        shot(page, "alignment-debug-5-33-chunks", "The four strategies side by side")
        shot(page, "alignment-debug-6-33-chunks-picture", "What sample chose")
        print(f"979 tokens: {time.monotonic() - start:.1f} s")
        start = time.monotonic()
        scroll_to(page, "Dataset mode")
        page.get_by_role("button", name="Run the batch").click()
        wait_for_app_idle(page, timeout_ms=600_000)
        assert_no_exception(page)
        shot(page, "alignment-debug-7-dataset", "Dataset mode")
        print(f"dataset mode (60 expressions x 4 strategies): {time.monotonic() - start:.1f} s")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
