"""The Beam alignment and Depth bounds pages under Streamlit's AppTest (tiny random model)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from apptest_helpers import figure as _figure
from apptest_helpers import figures as _figures
from streamlit.testing.v1 import AppTest

from app import depth_lab as D
from app import state

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"
# 16 tokens: with chunk width 4 the outer recursion has two levels (4 chunks, then 1).
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setenv(state.MODEL_ENV, "random-small")


def _page(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _table(at: AppTest, column: str):
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _param(at: AppTest, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


# -- Beam alignment ---------------------------------------------------------------------------


def test_alignment_picture_and_the_four_strategies():
    at = _page("alignment", expr=CHUNKED, w="4", k="3")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Chunks C"] == "4" and metrics["Combinations K^C"] == "81"
    picture = _figure(at, "After level 0 (sample)")
    names = [t["name"] for t in picture["data"]]
    assert "chunk beams" in names and "slots" in names and "slot 0" in names
    beams = next(t for t in picture["data"] if t["name"] == "chunk beams")
    assert len(beams["x"]) == 4 * 3  # C chunks x K beams
    table = _table(at, "mass kept (worst level)")
    assert list(table["strategy"]) == ["sample (sidebar)", "rank", "random", "kbest"]
    assert [m.label for m in at.metric][4:] == ["sample ◀ sidebar", "rank", "random", "kbest"]
    weights = _figure(at, "Final beam weights per strategy")
    assert [t["name"] for t in weights["data"]] == [
        "weights sample",
        "weights rank",
        "weights random",
        "weights kbest",
    ]

    # Switching the strategy in the sidebar redraws the picture and moves the marker.
    runs = state.TRACE_RUNS["count"]
    at.selectbox(key="settings.alignment").select("kbest").run()
    _ok(at)
    assert _figure(at, "After level 0 (kbest)")
    assert list(_table(at, "mass kept (worst level)")["strategy"])[3] == "kbest (sidebar)"
    assert state.TRACE_RUNS["count"] == runs  # the four traces were computed already
    assert _param(at, "align") == "kbest"
    assert any("Diagnostics (kbest)" in s.value for s in at.subheader)


def test_resample_draws_a_new_seed_and_reruns_the_strategies():
    at = _page("alignment", expr=CHUNKED, w="4", k="3", seed="5")
    assert at.number_input(key="settings.seed").value == 5
    at.button(key="alignment.resample").click().run()
    _ok(at)
    seed = at.number_input(key="settings.seed").value
    assert seed != 5 and _param(at, "seed") == str(seed)
    assert f"seed {seed}" in "\n".join(c.value for c in at.caption)


def test_over_many_seeds():
    at = _page("alignment", expr=CHUNKED, w="4", k="3")
    at.slider(key="alignment.seeds").set_value(8).run()
    at.button(key="alignment.run_seeds").click().run()
    _ok(at)
    chart = _figure(at, "Predictions over 8 seeds")
    counts = {t["name"]: t["y"] for t in chart["data"]}
    assert set(counts) == {f"seeds {s}" for s in ("sample", "rank", "random", "kbest")}
    assert all(sum(ys) == 8 for ys in counts.values())
    assert max(counts["seeds kbest"]) == 8  # kbest draws nothing: one answer for every seed
    summary = _table(at, "distinct predictions")
    assert list(summary["of"]) == [8, 8, 8, 8]
    at.run()  # a rerun shows the same results without running them again
    assert _figure(at, "Predictions over 8 seeds")


def test_diagnostics_sections():
    at = _page("alignment", expr=CHUNKED, w="4", k="3")
    labels = [e.label for e in at.expander]
    for part in (
        "best combination was lost",
        "Duplicate slots",
        "negligible weight",
        "disagrees with the gold structure",
    ):
        assert any(part in label for label in labels), labels


def test_dataset_mode_table_chart_and_links_to_failures():
    at = _page("alignment", expr=CHUNKED, w="4", k="3")
    at.slider(key="alignment.window").set_value((10, 40)).run()
    at.number_input(key="alignment.size").set_value(12).run()
    at.button(key="alignment.run_dataset").click().run()
    _ok(at)
    table = _table(at, "kbest")
    overall = table[table["tokens"] == "all"].iloc[0]
    assert overall["n"] == 12 and 0 <= overall["sample"] <= 100
    chart = _figure(at, "Accuracy per length bucket")
    assert len(chart["data"]) == 4
    assert all("error_y" in t for t in chart["data"])  # the 95% intervals
    assert any("strategies disagree:" in m.value for m in at.markdown)
    failing = [d.value for d in at.dataframe if "open" in d.value.columns][-1]
    assert len(failing) >= 1  # a random model gets most of them wrong
    link = urlparse(failing["open"].iloc[0])
    query = parse_qs(link.query)
    assert link.path == "./" and query["expr"] == [failing["expression"].iloc[0]]
    assert query["w"] == ["4"] and query["k"] == ["3"]

    first = failing["expression"].iloc[0]
    at.button(key="alignment.open_failing").click().run()
    _ok(at)
    assert [t.value for t in at.title] == ["RIR Explorer"]
    assert at.text_input(key="settings.expression").value == first


def test_a_single_chunk_input_says_why_there_is_nothing_to_align():
    at = _page("alignment", expr="[MAX 2 9 ]", w="30")
    assert any("one chunk and no alignment happens" in i.value for i in at.info)
    assert not at.get("plotly_chart")
    assert any("Dataset mode" in s.value for s in at.subheader)


def test_alignment_page_with_a_malformed_expression():
    at = _page("alignment", expr="[MAX 2 9")
    assert "a ']' is missing" in at.error[0].value
    assert not at.get("plotly_chart")


# -- Depth bounds -----------------------------------------------------------------------------


def test_depth_lab_marks_the_current_expression():
    at = _page("depth", expr=CHUNKED, w="4", k="3")
    curves = _figure(at, "Sequential depth vs length (chunk width W = 4)")
    assert curves["layout"]["xaxis"]["type"] == "log"
    assert curves["layout"]["yaxis"]["type"] == "log"
    star = next(t for t in curves["data"] if t["name"].startswith("this expression"))
    measured = D.depths(16, 4)["rir"]  # the tiny model ran the schedule: 3 + 3
    assert star["x"] == [16] and star["y"] == [measured] == [6]
    rows = _table(at, "RIR exact")
    mine = rows[rows["tokens n"] == 16].iloc[0]
    assert "this input (measured 6)" in mine["note"] and mine["RIR exact"] == 6
    assert "EBT/BT n − 1" in rows.columns and "balanced ⌈log₂ n⌉" in rows.columns

    at.select_slider(key="depth.n").set_value(300).run()
    _ok(at)
    curves = _figure(at, "Sequential depth vs length")
    picked = next(t for t in curves["data"] if t["name"] == "n = 300")
    assert picked["y"][2] == 299
    at.slider(key="depth.w").set_value(10).run()
    _ok(at)
    assert _figure(at, "Sequential depth vs length (chunk width W = 10)")


def test_depth_lab_runs_every_model_on_the_expression():
    at = _page("depth", expr=CHUNKED, w="4", k="3")
    runs = _table(at, "measured depth")
    assert list(runs["model"]) == ["RIR-EBT-GRC", "EBT-GRC", "BT-GRC", "BBT-GRC"]
    assert list(runs["measured depth"]) == [6, 15, 15, 4]
    assert list(runs["prediction"]) == ["untrained"] * 4
    assert all(t > 0 for t in runs["time (ms)"])
    assert any("Untrained (random weights)" in c.value for c in at.caption)
    panels = [f for f in _figures(at) if any(t["name"] == "time (ms)" for t in f["data"])]
    assert len(panels) == 1
    depth = next(t for t in panels[0]["data"] if t["name"] == "measured depth")
    assert depth["y"] == [6, 15, 15, 4]


def test_depth_lab_runs_the_models_once_per_expression_and_settings(monkeypatch):
    calls = []
    real = D.run_model

    def counted(model, text, seed=0, **kw):
        calls.append((model.config.model_type, text, kw.get("chunk_width")))
        return real(model, text, seed, **kw)

    monkeypatch.setattr(D, "run_model", counted)
    import streamlit as st

    st.cache_data.clear()  # earlier tests of this process ran the same expression
    at = _page("depth", expr=CHUNKED, w="4", k="3")
    assert sorted(c[0] for c in calls) == ["bbt_grc", "bt_grc", "ebt_grc", "rir_ebt_grc"]
    first = len(calls)
    at.select_slider(key="depth.n").set_value(300).run()  # the chart's n: nothing to re-run
    _ok(at)
    assert len(calls) == first
    assert list(_table(at, "measured depth")["measured depth"]) == [6, 15, 15, 4]
    at.slider(key="depth.w").set_value(10).run()  # the curves' W: nothing to re-run either
    assert len(calls) == first
    at.slider(key="settings.chunk_width").set_value(5).run()  # the model's W: RIR runs again
    _ok(at)
    assert [c[0] for c in calls[first:]] == ["rir_ebt_grc"]


def test_depth_lab_skips_bt_grc_on_long_inputs_until_asked():
    long = "[SM " + "1 " * (D.BT_GRC_AUTO_TOKENS + 10) + "]"
    at = _page("depth", expr=long, w="30", k="2")
    runs = _table(at, "measured depth")
    bt = runs[runs["model"] == "BT-GRC"].iloc[0]
    assert bt["note"].startswith("not run")
    # #18 item 9: the cells of a model not run say so, never "None".
    assert (bt["measured depth"], bt["time (ms)"], bt["prediction"]) == (D.NOT_RUN,) * 3
    assert "None" not in runs.astype(str).to_string()
    at.checkbox(key="depth.bt").check().run()
    _ok(at)
    runs = _table(at, "measured depth")
    assert runs[runs["model"] == "BT-GRC"].iloc[0]["measured depth"] == D.BT_GRC_AUTO_TOKENS + 11


def test_depth_lab_without_a_valid_expression():
    at = _page("depth", expr="[MAX 2 9")
    assert any("does not parse" in w.value for w in at.warning)
    curves = _figure(at, "Sequential depth vs length")
    assert not any(t["name"].startswith("this expression") for t in curves["data"])
