"""Helpers for browser tests: find a system Chromium, run the app, drive it with Playwright.

The fixtures that use these live in `conftest.py`; test modules import the page helpers:

    from browser import assert_no_exception, open_app, save_screenshot, wait_for_app_idle

Playwright is imported lazily, so this module imports fine where Playwright is missing (the
browser tests then skip, or fail under RIR_REQUIRE_BROWSER=1, with the reason from
`browser_unavailable_reason`). Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_SCRIPT = REPO_ROOT / "app" / "main.py"
# Screenshots land here (git-ignored) so that people can look at what the tests saw.
ARTIFACTS_DIR = REPO_ROOT / "tests" / "_artifacts"

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FALLBACK = Path("/usr/bin/chromium")
# Without the networking flags Chromium keeps dialling Google's hosts, which this network refuses.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)
NO_CHROMIUM = (
    "no system Chromium found: install it with apt-get install chromium or set RIR_CHROMIUM"
)

SERVER_START_TIMEOUT_S = 60.0  # cold start of streamlit (and torch imports) on 2 busy cores
SERVER_STOP_TIMEOUT_S = 10.0
APP_IDLE_TIMEOUT_MS = 60_000  # one script run of a page, model loading included
APP_QUIET_MS = 300  # how long the app must stay idle to count as finished (catches late reruns)


def browser_required() -> bool:
    """True when a missing browser must fail the browser tests instead of skipping them."""
    return os.environ.get("RIR_REQUIRE_BROWSER", "") == "1"


def find_chromium() -> Path | None:
    """The Chromium to drive: $RIR_CHROMIUM if set, else the first one on PATH, else None."""
    override = os.environ.get("RIR_CHROMIUM")
    if override:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    if CHROMIUM_FALLBACK.is_file() and os.access(CHROMIUM_FALLBACK, os.X_OK):
        return CHROMIUM_FALLBACK
    return None


def browser_unavailable_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    override = os.environ.get("RIR_CHROMIUM")
    if override and find_chromium() is None:
        return f"RIR_CHROMIUM={override} is not an executable file; {NO_CHROMIUM}"
    if find_chromium() is None:
        return NO_CHROMIUM
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not importable ({exc}): pip install -r requirements-dev.txt"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamlitServer:
    """`streamlit run app/main.py` in a subprocess, headless, on 127.0.0.1:port.

    Its output goes to `log_path`, which the start-up failure message quotes.
    """

    def __init__(self, log_path: Path, script: Path = APP_SCRIPT, port: int | None = None):
        self.script = script
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "streamlit", "run", str(self.script),
            "--server.headless", "true",
            "--server.port", str(self.port),
            "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip

    def start(self, timeout_s: float = SERVER_START_TIMEOUT_S) -> None:
        """Start the server and wait until /_stcore/health answers "ok"; raise if it does not."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with code {self.process.returncode} before answering "
                    f"on {self.url}:\n{self.output()}"
                )
            if self.healthy():
                return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"streamlit did not answer {self.url}/_stcore/health within {timeout_s:.0f} s:\n"
            f"{self.output()}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                return response.read().strip() == b"ok"
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def output(self, last_chars: int = 6000) -> str:
        """The tail of what the server printed."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-last_chars:] or "(no output)"

    def __enter__(self) -> StreamlitServer:
        """``with StreamlitServer(...) as server:`` starts it and stops it on the way out."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def open_app(page: Page, base_url: str, path: str = "") -> Page:
    """Load the app (or one of its pages, e.g. path="trace") and wait until its script is done."""
    page.goto(f"{base_url}/{path.lstrip('/')}")
    page.wait_for_selector('[data-testid="stApp"]', state="attached")
    wait_for_app_idle(page)
    return page


def wait_for_app_idle(page: Page, timeout_ms: int = APP_IDLE_TIMEOUT_MS) -> None:
    """Wait until Streamlit is connected and has finished running the script.

    Call it after every action that reruns the script (typing + Enter, a click). The app must
    stay idle for APP_QUIET_MS, so a rerun that the action requested but that has not started
    yet is waited for too.
    """
    page.evaluate("() => { window.__rirIdleSince = undefined; }")
    page.wait_for_function(
        """(quietMs) => {
            const app = document.querySelector('[data-testid="stApp"]');
            const running = document.querySelector(
                '[data-testid="stStatusWidgetRunningIcon"], '
                + '[data-testid="stStatusWidgetRunningManIcon"]'
            );
            const idle = app !== null
                && app.dataset.testConnectionState === "CONNECTED"
                && app.dataset.testScriptState === "notRunning"
                && running === null;
            if (!idle) { window.__rirIdleSince = undefined; return false; }
            window.__rirIdleSince ??= performance.now();
            return performance.now() - window.__rirIdleSince >= quietMs;
        }""",
        arg=APP_QUIET_MS,
        polling=100,
        timeout=timeout_ms,
    )


def assert_no_exception(page: Page) -> None:
    """Fail with the traceback text when the app shows an exception box."""
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count():
        texts = "\n---\n".join(boxes.all_inner_texts())
        raise AssertionError(f"the app shows an exception:\n{texts}")


def save_screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    """Save a PNG of the page as tests/_artifacts/NAME.png and return its path."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
