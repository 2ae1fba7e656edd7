"""Shared fixtures. Browser tests: mark them `@pytest.mark.browser` and ask for `app_page`.

    @pytest.mark.browser
    def test_something(app_page):        # the app's main page, loaded and idle
        ...
    def test_other(page, streamlit_app):  # any page: open_app(page, streamlit_app, "trace")

Without a system Chromium (or without Playwright) these fixtures skip the test with the reason;
with RIR_REQUIRE_BROWSER=1 (set by .ci/run) they fail it instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from browser import (
    CHROMIUM_ARGS,
    StreamlitServer,
    browser_required,
    browser_unavailable_reason,
    find_chromium,
    open_app,
    save_screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def pytest_report_header(config: pytest.Config) -> str:
    reason = browser_unavailable_reason()
    if reason is None:
        return f"browser tests: Chromium at {find_chromium()}"
    return f"browser tests: {'FAIL' if browser_required() else 'skip'} ({reason})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    # Keep each phase's report on the test, so the page fixture can screenshot a failure.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _skip_or_fail(reason: str) -> None:
    if browser_required():
        pytest.fail(f"RIR_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """The system Chromium, headless, driven by Playwright; one for the whole session."""
    reason = browser_unavailable_reason()
    if reason is not None:
        _skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(find_chromium()), headless=True, args=list(CHROMIUM_ARGS)
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def streamlit_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `streamlit run app/main.py`, started once per session and stopped at the end."""
    server = StreamlitServer(log_path=tmp_path_factory.mktemp("streamlit") / "server.log")
    # The app under test uses a tiny random model (fast on 2 cores) unless told otherwise.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RIR_APP_MODEL", os.environ.get("RIR_APP_MODEL", "random-small"))
        # Its model picker and training page see an empty runs folder, not the developer's.
        env.setenv("RIR_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
    yield server.url
    server.stop()


@pytest.fixture
def page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser tab (own context); a failing test leaves tests/_artifacts/NAME-failed.png."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        save_screenshot(tab, f"{request.node.name}-failed")
    context.close()


@pytest.fixture
def app_page(page: Page, streamlit_app: str) -> Page:
    """The app's main page, loaded, with its script run finished."""
    return open_app(page, streamlit_app)
