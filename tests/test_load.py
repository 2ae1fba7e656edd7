"""The classroom load script (tests/load_classroom.py) in its short mode, and the proof that its
websocket clients cause the same script runs as a browser: they see the page AppTest sees.

The full load run (30 sessions, several minutes) is a measurement, not a test: its figures are in
docs/reliability.md with the command that produced them.
"""

from __future__ import annotations

import json
from pathlib import Path

import load_classroom as L
import pytest
from streamlit.testing.v1 import AppTest

from app import state

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"
EXPRESSION = "[MAX 1 [MIN 3 4 ] [SM 2 5 ] 6 ]"


@pytest.mark.slow
def test_the_short_load_run_serves_every_action_without_error(tmp_path):
    out = tmp_path / "load.json"
    png = tmp_path / "memory.png"
    code = L.main(["--short", "--model", "random-small", "--json", str(out), "--plot", str(png)])
    report = json.loads(out.read_text())
    assert code == 0, report["error_samples"]
    assert report["errors"] == 0 and report["server_alive"]
    kinds = {row["action"] for row in report["table"]}
    assert {"open", "type", "step"} <= kinds, report["table"]
    assert all(a["seconds"] > 0 for a in report["raw"])
    if Path("/proc/self/status").exists():  # memory figures where /proc exists
        assert {"start", "after_warm_up", "peak", "after_cooldown"} <= set(report["memory_mib"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _apptest_view() -> dict[str, str]:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.run()
    at.text_input(key="settings.expression").set_value(EXPRESSION).run()
    view = {m.label: str(m.value) for m in at.metric}
    [step] = [b for b in at.button if b.label == "Next step"]
    step.click().run()
    view["step"] = next(m.value for m in at.markdown if m.value.startswith("**Merge step"))
    return view


async def _websocket_view(url: str) -> dict[str, str]:
    client = L.StreamlitClient(url)
    await client.connect()
    try:
        await client.open_page()
        typed = await client.type_text(L.EXPRESSION_LABEL, EXPRESSION)
        view = dict(typed.metrics)
        stepped = await client.click(L.NEXT_STEP)
        assert client.widgets[L.NEXT_STEP].fragment_id  # a fragment rerun, as in the browser
        view["step"] = next(t for t in stepped.texts if t.startswith("**Merge step"))
        assert typed.status == stepped.status == "ok"
        return view
    finally:
        await client.close()


@pytest.mark.slow
def test_websocket_clients_see_the_page_apptest_sees(monkeypatch):
    monkeypatch.setenv(state.MODEL_ENV, "random-small")
    with L.streamlit_server({state.MODEL_ENV: "random-small"}) as (url, _):
        seen = L.run_async(_websocket_view(url))
    expected = _apptest_view()
    assert seen == expected
    assert {"Prediction", "Ground truth"} <= set(seen)
    assert seen["step"].startswith("**Merge step 2 of ")
