"""Time the Explorer in a real browser: from pressing Enter to the full page (not a test).

    python tests/measure_speed.py [--model random] [--repeat 3] [--tokens 100 1000]

Starts `streamlit run app/main.py` (the model named by RIR_APP_MODEL, default: the app's
default), opens the Explorer in headless Chromium, types an expression of about N tokens and
presses Enter; the clock stops when the script run is over and every chart on the page has
drawn (Streamlit idle, one `.main-svg` per plotly chart). Each length is measured ``--repeat``
times with fresh expressions (a cold trace each time) and once more with a cached one.
Prints one line per run and a JSON summary; also reports the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from browser import CHROMIUM_ARGS, StreamlitServer, find_chromium, open_app  # noqa: E402

# Resolves when the app has finished the run started by the key press and every chart is drawn.
DONE_JS = """() => new Promise((resolve) => {
    const t0 = window.__rirT0;
    let seenRun = false, idleSince = null, runEnd = null, runs = 0, wasRunning = false;
    const check = () => {
        const app = document.querySelector('[data-testid="stApp"]');
        const running = app.dataset.testScriptState === "running"
            || document.querySelector('[data-testid="stStatusWidgetRunningIcon"]') !== null;
        if (running && !wasRunning) { runs += 1; }
        wasRunning = running;
        if (running) { seenRun = true; idleSince = null; runEnd = null; }
        else if (seenRun) { runEnd ??= performance.now(); }
        const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
        const drawn = [...charts].every((c) => c.querySelector('.main-svg') !== null);
        const stale = document.querySelector('[data-stale="true"]') !== null;
        if (seenRun && !running && drawn && !stale) {
            idleSince ??= performance.now();
            if (performance.now() - idleSince > 400) {
                resolve({ms: idleSince - t0, script_ms: runEnd - t0, runs, charts: charts.length});
                return;
            }
        } else if (!running) { idleSince = null; }
        requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
})"""


def _cpu_seconds(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and all its live descendants, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    keep, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in keep]
        keep.update(kids)
        frontier.extend(kids)
    return {pid: cpu[pid] for pid in keep if pid in cpu}


def cpu_split(before: dict[int, float], after: dict[int, float], server: int) -> tuple:
    """(server CPU s, everything else: browser and driver) between two snapshots."""
    spent = {pid: t - before.get(pid, 0.0) for pid, t in after.items()}
    return spent.get(server, 0.0), sum(t for pid, t in spent.items() if pid != server)


def measure(page, text: str) -> dict:
    box = page.get_by_label("ListOps expression", exact=True)
    box.fill(text)
    page.evaluate("() => { window.__rirT0 = performance.now(); }")
    box.press("Enter")
    return page.evaluate(DONE_JS)


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from rir_core.generate import Recipe, generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.environ.get("RIR_APP_MODEL", ""))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tokens", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--css", default="", help="extra CSS injected into the page (experiments)")
    args = ap.parse_args(argv)
    if args.model:
        os.environ["RIR_APP_MODEL"] = args.model
    else:
        os.environ.pop("RIR_APP_MODEL", None)
    log = Path(tempfile.mkdtemp()) / "server.log"
    server = StreamlitServer(log_path=log)
    server.start()
    results: dict[str, list[float]] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(find_chromium()), headless=True, args=list(CHROMIUM_ARGS)
            )
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(120_000)
            open_app(page, server.url)
            if args.css:
                page.add_style_tag(content=args.css)
            for n in args.tokens:
                lo = max(2, n - n // 20)
                texts = [ex.text for ex in generate(Recipe(lo, n), args.repeat, seed=1234 + n)]
                for i, text in enumerate(texts + texts[:1]):
                    kind = "cached" if i == len(texts) else "cold"
                    load = os.getloadavg()[0]
                    before = _cpu_seconds(os.getpid())
                    out = measure(page, text)
                    srv, rest = cpu_split(before, _cpu_seconds(os.getpid()), server.process.pid)
                    ms = out["ms"]
                    results.setdefault(f"{n}-{kind}", []).append(ms / 1000)
                    results.setdefault(f"{n}-{kind}-cpu-server", []).append(srv)
                    results.setdefault(f"{n}-{kind}-cpu-browser", []).append(rest)
                    print(
                        f"{len(text.split()):5d} tokens {kind:6s} {ms / 1000:6.2f} s "
                        f"(script done at {out['script_ms'] / 1000:.2f} s, {out['runs']} run(s); "
                        f"CPU: server {srv:.2f} s, browser {rest:.2f} s; {out['charts']} charts; "
                        f"load avg {load:.2f})",
                        flush=True,
                    )
            browser.close()
    finally:
        server.stop()
    print(json.dumps({"load_avg_1min": os.getloadavg()[0], "seconds": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
