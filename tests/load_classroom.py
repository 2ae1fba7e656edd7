"""Load test: a classroom of students on one RIR Explorer server (issue #10).

Starts ``streamlit run app/main.py`` (or attaches to ``--url``), then drives ``--sessions``
concurrent sessions for ``--minutes``. Each simulated student speaks Streamlit's own browser
protocol over the websocket ``/_stcore/stream`` (``BackMsg`` / ``ForwardMsg`` protobufs, the
messages the browser's JavaScript sends and receives), so the server runs exactly the script runs a
browser would cause: a typed expression is a full rerun with the text box's new value, a click on
"Next step" is a fragment rerun with the button's trigger, just as a click in Chromium sends.
``tests/test_load.py`` checks that these clients see the same page as the browser does.

A student loops: type an expression of 20-1,000 tokens (four length buckets), read the answer,
step through a few merges and one outer level with a think time between clicks, then pause. The
time of an action is from sending its message until the server's ``script_finished`` (every
element of the page has been sent): the time to a complete page.

Reported (stdout, and ``--json``): p50 / p95 / max per action and length bucket, errors (exception
elements, failed runs, dropped connections), and the server's resident memory (``/proc``) over
time: at start, after warm-up, peak, at the end of the load, and ``--cooldown`` seconds after
every session closed. ``--with-training`` starts one Training-page job (the classroom preset,
through ``app.jobs``) in the server's runs folder before the students arrive.

    python tests/load_classroom.py --sessions 30 --minutes 5 --json docs/reliability_run.json
    python tests/load_classroom.py --short            # 3 sessions, 20 s (tests/test_load.py)

Linux only for the memory figures (``/proc/<pid>/status``); the rest runs anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

Finished = ForwardMsg.ScriptFinishedStatus  # the enum of ForwardMsg.script_finished

# Length buckets of the typed expressions (tokens) and how often each is drawn.
BUCKETS: dict[str, tuple[int, int]] = {
    "20-60": (20, 60),
    "~100": (90, 110),
    "200-500": (200, 500),
    "500-1000": (500, 1000),
}
BUCKET_WEIGHTS = {"20-60": 3, "~100": 4, "200-500": 2, "500-1000": 1}
EXPRESSION_LABEL = "ListOps expression"
NEXT_STEP, NEXT_LEVEL = "Next step", "Next level"
OK_ENDS = {
    Finished.FINISHED_SUCCESSFULLY,
    Finished.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
}


# --------------------------------------------------------------------------------------------
# One browser-less Streamlit client


@dataclass
class Widget:
    id: str
    kind: str  # the Element oneof: "button", "text_input", "slider", ...
    fragment_id: str  # "" outside a fragment


@dataclass
class RunResult:
    seconds: float
    status: str  # "ok", or why not
    exceptions: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # markdown, captions, metric values, alerts
    errors: list[str] = field(default_factory=list)  # st.error bodies (expected for bad input)
    metrics: dict[str, str] = field(default_factory=dict)  # st.metric label -> value


def _element_texts(element: Any) -> tuple[str, list[str]]:
    kind = element.WhichOneof("type")
    body = getattr(element, kind) if kind else None
    if kind == "markdown":
        return kind, [body.body]
    if kind == "metric":
        return kind, [f"{body.label}: {body.body}"]
    if kind == "alert":
        return kind, [body.body]
    if kind == "heading":
        return kind, [body.body]
    return kind or "", []


class StreamlitClient:
    """One session: a websocket to ``/_stcore/stream`` speaking the browser's protobufs."""

    def __init__(self, url: str, query_string: str = "") -> None:
        self.url = url.rstrip("/")
        self.query_string = query_string
        self.widgets: dict[str, Widget] = {}  # label -> widget, from the latest runs
        self.states: dict[str, Any] = {}  # widget id -> WidgetState we set (kept like a browser)
        self.page_hash = ""
        self.ws: Any = None

    async def connect(self) -> None:
        ws_url = "ws" + self.url[len("http") :] + "/_stcore/stream"
        self.ws = await websockets.connect(
            ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=30, ping_interval=None
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def _send(self, fragment_id: str = "", trigger: str | None = None) -> RunResult:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = self.page_hash
        if fragment_id:
            cs.fragment_id = fragment_id
        for state in self.states.values():
            cs.widget_states.widgets.append(state)
        if trigger is not None:
            w = cs.widget_states.widgets.add()
            w.id, w.trigger_value = trigger, True
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        return await self._until_finished(start)

    async def _until_finished(self, start: float) -> RunResult:
        result = RunResult(0.0, "ok")
        while True:
            raw = await self.ws.recv()
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = self.page_hash or fwd.new_session.page_script_hash
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                etype, texts = _element_texts(element)
                if etype == "exception":
                    e = element.exception
                    result.exceptions.append(f"{e.type}: {e.message}")
                elif etype == "alert" and element.alert.format == element.alert.ERROR:
                    result.errors.extend(texts)
                elif etype == "metric":
                    result.metrics[element.metric.label] = element.metric.body
                result.texts.extend(texts)
                body = getattr(element, etype) if etype else None
                if body is not None and hasattr(body, "id") and hasattr(body, "label") and body.id:
                    self.widgets[body.label] = Widget(body.id, etype, fwd.delta.fragment_id)
            elif kind == "script_finished":
                status = fwd.script_finished
                if status == Finished.FINISHED_EARLY_FOR_RERUN:
                    continue  # the browser waits for the rerun's own end, so do we
                result.seconds = time.perf_counter() - start
                if status not in OK_ENDS:
                    result.status = f"script ended with {Finished.Name(status)}"
                elif result.exceptions:
                    result.status = "exception: " + result.exceptions[0][:200]
                return result

    async def open_page(self) -> RunResult:
        return await self._send()

    async def type_text(self, label: str, text: str) -> RunResult:
        widget = self.widgets[label]
        state = BackMsg().rerun_script.widget_states.widgets.add()
        state.id, state.string_value = widget.id, text
        self.states[widget.id] = state
        return await self._send(widget.fragment_id)

    async def click(self, label: str) -> RunResult:
        widget = self.widgets[label]
        return await self._send(widget.fragment_id, trigger=widget.id)


# --------------------------------------------------------------------------------------------
# The server and its memory


def run_async(coro: Any) -> Any:
    """``asyncio.run(coro)``, in a thread of its own where this thread already runs an event loop
    (under pytest, Playwright's sync API leaves one running on the main thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="load-client")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` and its children's threads (VmRSS), in MiB; None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextlib.contextmanager
def streamlit_server(env: dict[str, str], extra: list[str] = ()):
    """``streamlit run app/main.py`` on a free port; yields (url, process)."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1", *extra]  # fmt: skip
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise RuntimeError("the server did not start: " + log.read().decode()[-2000:])
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s, self.t0 = pid, every_s, time.time()
        self.samples: list[tuple[float, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            value = rss_mib(self.pid)
            if value is not None:
                self.samples.append((round(time.time() - self.t0, 1), round(value, 1)))
            self.halt.wait(self.every_s)

    def now(self) -> float | None:
        return rss_mib(self.pid)


# --------------------------------------------------------------------------------------------
# Students


@dataclass
class Action:
    student: int
    kind: str  # "open", "type", "step", "level"
    bucket: str
    tokens: int
    seconds: float
    status: str
    at_s: float


def expression_pool(per_bucket: int, seed: int) -> dict[str, list[tuple[int, str]]]:
    """Expressions per bucket: (token count, text), from the project's seeded generator."""
    from rir_core.generate import Recipe, generate

    pool = {}
    for i, (name, (lo, hi)) in enumerate(BUCKETS.items()):
        examples = generate(Recipe(lo, hi), per_bucket, seed=seed + i)
        pool[name] = [(len(e.text.split()), e.text) for e in examples]
    return pool


@dataclass
class Plan:
    sessions: int
    seconds: float
    think_s: tuple[float, float]  # between clicks
    pause_s: tuple[float, float]  # after a round of stepping
    steps: tuple[int, int]  # "Next step" clicks per expression
    buckets: dict[str, int]  # weights


async def student(
    index: int,
    url: str,
    plan: Plan,
    pool: dict[str, list[tuple[int, str]]],
    actions: list[Action],
    t0: float,
) -> None:
    rng = random.Random(index)
    await asyncio.sleep(rng.uniform(0, min(10.0, plan.seconds / 4)))  # students arrive over time
    client = StreamlitClient(url)

    def record(kind: str, bucket: str, tokens: int, r: RunResult) -> None:
        actions.append(
            Action(
                index,
                kind,
                bucket,
                tokens,
                round(r.seconds, 3),
                r.status,
                round(time.perf_counter() - t0, 1),
            )  # fmt: skip
        )

    try:
        await client.connect()
        record("open", "", 0, await client.open_page())
        names, weights = list(plan.buckets), list(plan.buckets.values())
        while time.perf_counter() - t0 < plan.seconds:
            bucket = rng.choices(names, weights)[0]
            tokens, text = rng.choice(pool[bucket])
            record("type", bucket, tokens, await client.type_text(EXPRESSION_LABEL, text))
            for _ in range(rng.randint(*plan.steps)):
                await asyncio.sleep(rng.uniform(*plan.think_s))
                if NEXT_STEP not in client.widgets:
                    break
                record("step", bucket, tokens, await client.click(NEXT_STEP))
            if NEXT_LEVEL in client.widgets:
                await asyncio.sleep(rng.uniform(*plan.think_s))
                record("level", bucket, tokens, await client.click(NEXT_LEVEL))
            await asyncio.sleep(rng.uniform(*plan.pause_s))
    except Exception as exc:  # a dropped connection or protocol failure is an error, not a crash
        at = round(time.perf_counter() - t0, 1)
        actions.append(Action(index, "connection", "", 0, 0.0, f"{type(exc).__name__}: {exc}", at))
    finally:
        with contextlib.suppress(Exception):
            await client.close()


# --------------------------------------------------------------------------------------------
# Report


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarise(actions: list[Action]) -> list[dict[str, Any]]:
    rows = []
    groups: dict[tuple[str, str], list[Action]] = {}
    for a in actions:
        groups.setdefault((a.kind, a.bucket), []).append(a)
    order = ["open", "type", "step", "level", "connection"]
    for (kind, bucket), group in sorted(
        groups.items(),
        key=lambda kv: (
            order.index(kv[0][0]),
            list(BUCKETS).index(kv[0][1]) if kv[0][1] in BUCKETS else -1,
        ),  # fmt: skip
    ):
        secs = [a.seconds for a in group if a.status == "ok"]
        rows.append(
            {
                "action": kind,
                "bucket": bucket,
                "n": len(group),
                "errors": sum(a.status != "ok" for a in group),
                "p50_s": round(percentile(secs, 0.5), 2) if secs else None,
                "p95_s": round(percentile(secs, 0.95), 2) if secs else None,
                "max_s": round(max(secs), 2) if secs else None,
                "mean_tokens": round(statistics.mean(a.tokens for a in group)) if bucket else 0,
            }
        )
    return rows


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n{report['sessions']} sessions for {report['seconds']:.0f} s"
        f"{' with a training job running' if report['training'] else ''}:"  # fmt: skip
        f" {report['actions']} actions, {report['errors']} errors"
    )
    print(f"{'action':<10}{'tokens':<10}{'n':>6}{'errors':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}")
    for r in report["table"]:
        print(f"{r['action']:<10}{r['bucket']:<10}{r['n']:>6}{r['errors']:>8}"
              f"{r['p50_s'] or float('nan'):>8.2f}{r['p95_s'] or float('nan'):>8.2f}"
              f"{r['max_s'] or float('nan'):>8.2f}")  # fmt: skip
    m = report["memory_mib"]
    if m:
        print(
            "server memory (MiB): "
            + ", ".join(f"{k} {v:.0f}" for k, v in m.items() if isinstance(v, (int, float)))
        )
    if len(report.get("waves", [])) > 1:
        for w in report["waves"]:
            print(f"wave {w['wave']}: {w['actions']} actions, {w['errors']} errors, memory peak "
                  f"{w['peak']:.0f}, end {w['end_of_load']:.0f}, after cooldown "
                  f"{w['after_cooldown']:.0f} MiB")  # fmt: skip
    for line in report["error_samples"]:
        print("error:", line)


# --------------------------------------------------------------------------------------------
# Main


def start_training_job(runs: Path) -> str:
    """One Training-page job (the classroom preset) in ``runs``, as a teacher would start it."""
    os.environ["RIR_RUNS_DIR"] = str(runs)
    from app import jobs

    job = jobs.start_job(jobs.JobSettings.from_preset("classroom"), owner="load-test", root=runs)
    return job.id


async def drive(url: str, plan: Plan, pool, actions: list[Action]) -> None:
    t0 = time.perf_counter()
    await asyncio.gather(*(student(i, url, plan, pool, actions, t0) for i in range(plan.sessions)))


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan(
        sessions=args.sessions,
        seconds=args.minutes * 60,
        think_s=(args.think[0], args.think[1]),
        pause_s=(args.pause[0], args.pause[1]),
        steps=(2, 6),
        buckets=BUCKET_WEIGHTS if not args.short else {"20-60": 2, "~100": 2, "200-500": 1},
    )
    pool = expression_pool(per_bucket=40 if not args.short else 6, seed=args.seed)
    runs = Path(tempfile.mkdtemp(prefix="rir-load-runs-"))
    env = {"RIR_RUNS_DIR": str(runs)}
    if args.model:
        env["RIR_APP_MODEL"] = args.model
    report: dict[str, Any] = {
        "sessions": plan.sessions,
        "seconds": plan.seconds,
        "training": args.with_training,
        "think_s": plan.think_s,
        "pause_s": plan.pause_s,
        "model": args.model or "default (pretrained/)",
    }
    with streamlit_server(env, args.server_arg) as (url, proc):
        sampler = MemorySampler(proc.pid)
        sampler.start()
        memory: dict[str, Any] = {"start": sampler.now()}
        warm = run_async(_warm_up(url))  # loads the model once, as the first visitor does
        memory["after_warm_up"] = sampler.now()
        report["warm_up_s"] = round(warm, 2)
        job_id = start_training_job(runs) if args.with_training else None
        actions: list[Action] = []
        waves = []
        for wave in range(args.waves):  # a class, its cooldown, the next class on the same server
            before = len(actions)
            wave_start = time.time() - sampler.t0
            run_async(drive(url, plan, pool, actions))
            end_of_load, load_end_s = sampler.now(), time.time() - sampler.t0
            if job_id and wave == 0:
                from app import jobs

                job = jobs.get_job(job_id, runs)
                report["training_job"] = {"id": job_id, "status": job.status if job else "missing"}
                with contextlib.suppress(Exception):
                    jobs.stop_job(job_id, runs)
            time.sleep(args.cooldown)
            peak = max((v for t, v in sampler.samples if t >= wave_start), default=None)
            waves.append(
                {
                    "wave": wave + 1,
                    "start_s": round(wave_start, 1),
                    "end_s": round(load_end_s, 1),
                    "actions": len(actions) - before,
                    "errors": sum(a.status != "ok" for a in actions[before:]),
                    "peak": peak,
                    "end_of_load": end_of_load,
                    "after_cooldown": sampler.now(),
                }
            )
        memory["end_of_load"] = waves[-1]["end_of_load"]
        memory["after_cooldown"] = waves[-1]["after_cooldown"]
        memory["cooldown_s"] = args.cooldown
        report["waves"] = waves
        sampler.halt.set()
        memory["peak"] = max((v for _, v in sampler.samples), default=None)
        report["memory_series"] = sampler.samples
        report["server_alive"] = proc.poll() is None
    report["memory_mib"] = {k: v for k, v in memory.items() if v is not None}
    report["actions"] = len(actions)
    report["errors"] = sum(a.status != "ok" for a in actions)
    report["table"] = summarise(actions)
    report["error_samples"] = sorted({a.status for a in actions if a.status != "ok"})[:10]
    report["raw"] = [asdict(a) for a in actions]
    return report


async def _warm_up(url: str) -> float:
    client = StreamlitClient(url)
    await client.connect()
    try:
        result = await client.open_page()
        if result.status != "ok":
            raise RuntimeError(f"the first page failed: {result.status}")
        return result.seconds
    finally:
        await client.close()


def plot_memory(report: dict[str, Any], path: Path) -> None:
    """Server memory over time (PNG), the classes shaded, each cooldown left white."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s[0] for s in report["memory_series"]]
    mib = [s[1] for s in report["memory_series"]]
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
    ax.plot(t, mib, color="#2f6f9f", lw=1.5, label="server resident memory")
    for w in report.get("waves", []):
        if "start_s" in w:
            ax.axvspan(w["start_s"], w["end_s"], color="#f2c14e", alpha=0.25, lw=0)
            ax.text(w["start_s"] + 3, min(mib) + 5, f"class {w['wave']}", fontsize=8)
    base = report["memory_mib"].get("after_warm_up")
    if base:
        ax.axhline(base, color="grey", ls="--", lw=1, label="after warm-up (model loaded)")
    ax.set_xlabel("seconds since the server started")
    ax.set_ylabel("MiB")
    ax.set_title(f"{report['sessions']} sessions"
                 f"{' with a training job' if report['training'] else ''}: memory over time",
                 fontsize=10)  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=30)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                   help="seconds between clicks (default 1-3)")  # fmt: skip
    p.add_argument("--pause", type=float, nargs=2, default=(5.0, 15.0), metavar=("MIN", "MAX"),
                   help="seconds of reading after a round of stepping (default 5-15)")  # fmt: skip
    p.add_argument("--cooldown", type=float, default=60.0,
                   help="seconds after the sessions close to the last memory reading")  # fmt: skip
    p.add_argument("--waves", type=int, default=1,
                   help="classes in a row on one server, each with its cooldown")  # fmt: skip
    p.add_argument("--with-training", action="store_true", help="one training job alongside")
    p.add_argument("--model", default="", help="RIR_APP_MODEL for the server (default: shipped)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--short", action="store_true",
                   help="a smoke run: 3 sessions, 20 s, short inputs")  # fmt: skip
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra `streamlit run` option")  # fmt: skip
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--plot", type=Path, help="draw the memory over time here (PNG)")
    p.add_argument("--plot-from", type=Path, help="only redraw --plot from this saved report")
    args = p.parse_args(argv)
    if args.short:
        args.sessions, args.minutes, args.cooldown = min(args.sessions, 3), 20 / 60, 5.0
        args.think, args.pause = (0.2, 0.5), (0.5, 1.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot_from:
        plot_memory(json.loads(args.plot_from.read_text()), args.plot or Path("memory.png"))
        return 0
    report = run_load(args)
    if args.plot:
        plot_memory(report, args.plot)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["errors"] == 0 and report["server_alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
