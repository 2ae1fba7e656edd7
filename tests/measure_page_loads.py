"""Time every page's first load in a fresh browser on a warm server (a benchmark, not a test).

    python tests/measure_page_loads.py [--repeat 3] [--model auto] [--app app/main.py]
                                       [--json OUT]

Starts `streamlit run` on the app (``--app``: another copy's ``app/main.py`` measures that copy,
e.g. an older commit unpacked with ``git archive``), visits every URL once so that the server's
caches are warm (the model, the traces, the Guide's searches), then opens each URL ``--repeat``
times, each in a new browser context (no cache, no cookies: a student's fresh tab). The clock
runs from the navigation's start to the moment the page is complete: Streamlit connected and
idle, no element stale, every plotly chart drawn (one ``.main-svg`` each), and it stays so for
400 ms (not counted). Prints one line per URL with the median, and the machine's load average:
numbers from a busy machine say so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import APP_SCRIPT, CHROMIUM_ARGS, StreamlitServer, find_chromium  # noqa: E402

# What a class opens: every page, and the lesson links of the teacher's guide.
URLS = (
    ("Explorer", ""),
    ("Beam alignment", "alignment"),
    ("Depth bounds", "depth"),
    ("Training", "training"),
    ("Guide", "guide"),
    ("lesson tree", "?lesson=tree"),
    ("lesson beams", "?lesson=beams"),
    ("lesson chunks (teacher)", "?lesson=chunks&teacher=1"),
    ("lesson very-long", "?lesson=very-long"),
    ("lesson bound-page", "depth?lesson=bound-page"),
)
TIMEOUT_MS = 120_000

# Resolves with the milliseconds from navigation start to a complete page (see the docstring).
COMPLETE_JS = """() => new Promise((resolve) => {
    let since = null;
    const check = () => {
        const app = document.querySelector('[data-testid="stApp"]');
        const idle = app !== null
            && app.dataset.testConnectionState === "CONNECTED"
            && app.dataset.testScriptState === "notRunning"
            && document.querySelector('[data-testid="stStatusWidgetRunningIcon"]') === null
            && document.querySelector('[data-stale="true"]') === null
            && document.querySelector('[data-testid="stMain"]') !== null;
        const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
        const drawn = [...charts].every((c) => c.querySelector('.main-svg') !== null);
        if (idle && drawn) {
            since ??= performance.now();
            if (performance.now() - since > 400) {
                resolve({ms: since, charts: charts.length});
                return;
            }
        } else { since = null; }
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
})"""


def load_once(browser, base: str, path: str) -> dict:
    """One first load of ``path`` in a fresh context: ``{"ms": ..., "charts": ...}``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{base}/{path}", wait_until="commit")
        return page.evaluate(COMPLETE_JS)
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/measure_page_loads.py", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="fresh loads per URL (median)")
    parser.add_argument(
        "--model",
        default=os.environ.get("RIR_APP_MODEL", "auto"),
        help="RIR_APP_MODEL of the app (default: the shipped model)",
    )
    parser.add_argument("--app", default=str(APP_SCRIPT), help="the app's main.py to serve")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("no Chromium: apt-get install chromium, or set RIR_CHROMIUM", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    os.environ["RIR_APP_MODEL"] = args.model
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("RIR_RUNS_DIR", str(Path(tmp) / "runs"))  # no one's real runs
        server = StreamlitServer(log_path=Path(tmp) / "server.log", script=Path(args.app))
        start = time.monotonic()
        server.start(timeout_s=120)
        print(f"server up in {time.monotonic() - start:.1f} s", file=sys.stderr)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(find_chromium()), headless=True, args=list(CHROMIUM_ARGS)
                )
                for name, path in URLS:  # warm the server: its first visit of each URL
                    first = load_once(browser, server.url, path)
                    results[name] = {"path": path, "server_first_ms": round(first["ms"])}
                for name, path in URLS:
                    times = [load_once(browser, server.url, path)["ms"] for _ in range(args.repeat)]
                    results[name].update(
                        median_ms=round(statistics.median(times)), runs_ms=[round(t) for t in times]
                    )
                    print(
                        f"{name:26s} median {results[name]['median_ms'] / 1000:5.2f} s  "
                        f"(runs {', '.join(f'{t / 1000:.2f}' for t in times)}; server's first "
                        f"visit {results[name]['server_first_ms'] / 1000:.2f} s)"
                    )
                browser.close()
        finally:
            server.stop()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    if args.json:
        summary = {"app": args.app, "model": args.model, "loadavg": load, "urls": results}
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
