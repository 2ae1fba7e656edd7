"""The app's pages under Streamlit's AppTest (no browser), with a tiny random model."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_helpers import figure as _figure
from apptest_helpers import figures as _figures
from streamlit.testing.v1 import AppTest

from app import figures as F
from app import state

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"
# 16 tokens: with chunk width 4 the outer recursion has two levels (4 chunks, then 1).
CHUNKED = "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 ] 3 4 5 ]"


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setenv(state.MODEL_ENV, "random-small")


def _app(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.query_params.update(query)
    return at.run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def _expression(at: AppTest):
    return at.text_input(key="settings.expression")


def _final_beams_table(at: AppTest):
    """The final beams table (one row per beam, with a weight column)."""
    tables = [d.value for d in at.dataframe if "weight" in d.value.columns]
    assert len(tables) == 1
    return tables[0]


def test_default_expression_runs():
    at = _app()
    _ok(at)
    assert [t.value for t in at.title] == ["RIR Explorer"]
    assert _expression(at).value == state.DEFAULT_EXPRESSION
    metrics = _metrics(at)
    assert metrics["Ground truth"] == "9" and metrics["Prediction"] in list("0123456789")
    assert any("untrained (random weights)" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 6  # probabilities, gold, outer, beams, heat, tree
    assert at.query_params["expr"] == [state.DEFAULT_EXPRESSION] or at.query_params["expr"] == (
        state.DEFAULT_EXPRESSION
    )


def test_malformed_expression_shows_sentence_and_caret():
    at = _app()
    _expression(at).input("[MAX 2 9 [FOO 4 ] 0 ]").run()
    _ok(at)
    assert len(at.error) == 1
    assert "This is not a ListOps expression" in at.error[0].value
    assert "unknown token '[FOO'" in at.error[0].value
    line, caret = at.code[0].value.splitlines()
    assert line == "[MAX 2 9 [FOO 4 ] 0 ]" and caret == " " * 9 + "^"
    assert not at.metric and not at.get("plotly_chart")

    _expression(at).input("[MAX 2 9").run()  # unclosed
    _ok(at)
    assert "a ']' is missing" in at.error[0].value
    _expression(at).input("   ").run()  # empty
    _ok(at)
    assert "Type a ListOps expression" in at.error[0].value


def test_oversized_expression_gets_one_sentence():
    at = _app()
    _expression(at).input("[SM " + "1 " * 5000 + "]").run()
    _ok(at)
    assert len(at.error) == 1 and "too long" in at.error[0].value and "5,000" in at.error[0].value
    assert not at.metric


def test_level_and_step_buttons_only_read_the_cached_trace():
    at = _app(expr=CHUNKED, w="4", k="3")
    _ok(at)
    assert at.slider(key="explorer.level").value == 0
    assert "**Level 0** of 2" in _texts(at)
    assert "**Merge step 1 of 3**" in _texts(at)
    runs = state.TRACE_RUNS["count"]

    at.button(key="explorer.level.next").click().run()
    _ok(at)
    assert at.slider(key="explorer.level").value == 1
    assert "**Level 1** of 2" in _texts(at)
    assert at.button(key="explorer.level.next").disabled

    at.button(key="explorer.step.next").click().run()
    at.button(key="explorer.step.next").click().run()
    _ok(at)
    assert at.slider(key="explorer.step").value == 3
    assert "**Merge step 3 of 3**" in _texts(at)
    at.button(key="explorer.step.prev").click().run()
    assert "**Merge step 2 of 3**" in _texts(at)

    at.button(key="explorer.level.prev").click().run()  # back to level 0: chunk and step reset
    _ok(at)
    assert "**Level 0** of 2" in _texts(at) and "**Merge step 1 of 3**" in _texts(at)
    at.selectbox(key="explorer.chunk").select(2).run()
    assert "in chunk 2 of level 0" in _texts(at)
    at.slider(key="explorer.step").set_value(2).run()
    assert "**Merge step 2 of 3** in chunk 2" in _texts(at)
    assert state.TRACE_RUNS["count"] == runs  # stepping never ran the model
    assert at.query_params["level"] in ("0", ["0"]) and at.query_params["step"] in ("2", ["2"])


def test_changing_beam_size_and_alignment_updates_the_trace():
    at = _app(expr=CHUNKED, w="4")
    _ok(at)
    assert len(_final_beams_table(at)) == 7  # K = 7 (the config's)
    runs = state.TRACE_RUNS["count"]
    at.slider(key="settings.beam_size").set_value(2).run()
    _ok(at)
    assert len(_final_beams_table(at)) == 2
    at.selectbox(key="settings.alignment").select("kbest").run()
    _ok(at)
    caption = "\n".join(c.value for c in at.caption)
    assert "K = 2, W = 4, kbest alignment" in caption
    assert state.TRACE_RUNS["count"] == runs + 2
    assert at.query_params["align"] in ("kbest", ["kbest"])


def test_query_params_restore_the_view():
    at = _app(expr=CHUNKED, seed="5", k="3", w="4", align="rank", level="1", step="2")
    _ok(at)
    assert _expression(at).value == CHUNKED
    assert at.slider(key="settings.beam_size").value == 3
    assert at.slider(key="settings.chunk_width").value == 4
    assert at.selectbox(key="settings.alignment").value == "rank"
    assert at.number_input(key="settings.seed").value == 5
    assert "**Level 1** of 2" in _texts(at) and "**Merge step 2 of 3**" in _texts(at)
    # Nonsense in the URL falls back to defaults instead of breaking the page.
    at = _app(expr=CHUNKED, k="999", w="x", align="best", level="42", step="-3")
    _ok(at)
    assert at.slider(key="settings.beam_size").value == 7
    assert at.slider(key="settings.chunk_width").value == 30  # W = 30: one level only
    assert "**Level 0** of 1" in _texts(at) and "**Merge step 1 of 15**" in _texts(at)
    # ... and says so, once, in one sentence naming what was asked and what is used instead.
    (notice,) = [w.value for w in at.warning if "This link asks for" in w.value]
    assert "k='999' (K is a whole number from 1 to 16)" in notice
    assert "w='x' (W is a whole number from 2 to 100)" in notice
    assert "align='best' (the alignment is one of sample, rank, random, kbest)" in notice
    assert "so the page uses K = 7, W = 30 and sample alignment instead" in notice
    assert notice.count(". ") == 0 and notice.endswith(".")
    at.button(key="explorer.step.next").click().run()
    _ok(at)
    assert not any("This link asks for" in w.value for w in at.warning)
    # A good link says nothing.
    assert not any("This link" in w.value for w in _app(expr=CHUNKED, k="3", w="4").warning)


def test_a_link_naming_a_model_this_server_lacks_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("RIR_RUNS_DIR", str(tmp_path))
    at = _app(expr=CHUNKED, model="run:from-another-server", k="3")
    _ok(at)
    (notice,) = [w.value for w in at.warning if "This link asks for" in w.value]
    assert notice.startswith(
        "This link asks for the model 'run:from-another-server', which this server does not "
        "have, so the page uses the default model (RIR-EBT-GRC (tiny)) instead"
    ), notice
    assert at.session_state[state.MODEL_STORE] == ""
    assert "model" not in at.query_params
    assert at.slider(key="settings.beam_size").value == 3  # the rest of the link still holds


def test_presets_and_random_expression():
    at = _app()
    at.selectbox(key="explorer.preset").select("Every operator").run()
    _ok(at)
    assert _expression(at).value == state.presets()["Every operator"]
    assert _metrics(at)["Ground truth"] == "6"  # (3 + 5 + 6 + 2) mod 10
    at.slider(key="explorer.random_length").set_value(20).run()
    at.button(key="explorer.random").click().run()
    _ok(at)
    text = _expression(at).value
    assert text != state.presets()["Every operator"]
    assert 18 <= len(text.split()) <= 20
    assert not at.error


@pytest.mark.parametrize("page", ["alignment", "depth", "training", "guide"])
def test_other_pages_run(page):
    at = _app(expr=CHUNKED, w="4", k="3")
    at.switch_page(f"pages/{page}.py").run()
    _ok(at)
    assert at.title and at.title[0].value
    if page == "alignment":
        assert _expression(at).value == CHUNKED  # the settings carry over between pages
        assert at.slider(key="settings.chunk_width").value == 4
        keys = {c.key for c in at.get("plotly_chart")}  # the four strategies, the picture
        assert {"alignment.strategies", "alignment.picture"} <= keys, keys
        assert [m.label for m in at.metric][:1] == ["Chunks C"]
    if page == "depth":
        assert len(at.get("plotly_chart")) == 2  # the curves, this expression's runs


def test_settings_survive_a_page_without_their_widgets():
    at = _app()
    _expression(at).input(CHUNKED).run()
    at.slider(key="settings.beam_size").set_value(3).run()
    at.switch_page("pages/guide.py").run()
    _ok(at)
    at.switch_page("pages/explorer.py").run()
    _ok(at)
    assert _expression(at).value == CHUNKED
    assert at.slider(key="settings.beam_size").value == 3


def test_a_checkpoint_is_named_and_a_missing_one_falls_back(tmp_path, monkeypatch):
    import torch

    from rir_core.checkpoint import save_checkpoint
    from rir_core.model import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = build_model(hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8)
    metrics = {"dev": {"accuracy": 0.9, "n": 500}, "len_900_1000": {"accuracy": 0.3, "n": 200}}
    path = save_checkpoint(
        tmp_path / "tiny", model.eval(), metadata={"notes": "test", "metrics": metrics}
    )
    monkeypatch.setenv(state.MODEL_ENV, str(path))
    at = _app()
    _ok(at)
    assert not at.warning
    captions = [c.value for c in at.caption]
    # Named, but no filesystem path is shown to the class (#18 item 9).
    assert any("from checkpoint tiny" in c for c in captions)
    assert not any(str(tmp_path) in c for c in captions)
    # The sidecar's accuracies are shown, and the one for the input's length next to the answer.
    assert any("dev (2-100 tokens) 90.0% of 500" in c for c in captions)
    assert any("On inputs of 2-100 tokens this model was right 90.0%" in c for c in captions)
    at.slider(key="settings.chunk_width").set_value(4).run()  # not the recorded settings
    _ok(at)
    assert any("settings now differ" in c.value for c in at.caption)

    monkeypatch.setenv(state.MODEL_ENV, str(tmp_path / "missing"))
    at = _app()
    _ok(at)
    assert "untrained (random weights)" in at.warning[0].value
    assert "missing" in at.warning[0].value  # says why it fell back
    assert _metrics(at)["Ground truth"] == "9"


def test_a_model_source_is_named_without_its_filesystem_path(tmp_path):
    from app.model_store import source_label
    from rir_core.pretrained import PRETRAINED_DIR

    assert source_label(str(PRETRAINED_DIR)) == "pretrained/" + PRETRAINED_DIR.name
    assert source_label(str(tmp_path / "run-7" / "best"), root=tmp_path) == "run run-7 (best)"
    assert source_label(str(tmp_path / "uploads" / "m1"), root=tmp_path) == (
        "uploaded checkpoint m1"
    )
    assert source_label("/somewhere/else/ckpt") == "checkpoint ckpt"
    assert source_label("untrained (random weights)") == "untrained (random weights)"


def test_downloads_and_gold_comparison():
    at = _app(expr=CHUNKED, w="4", k="3")
    _ok(at)
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert set(buttons) == {"Trace (JSON)", "DOT (Graphviz)", "GraphML"}
    helps = [b.proto.help for b in at.get("download_button")]
    assert sum("rir-trace-16tok-k3-w4-sample-seed0-gold.dot" in h for h in helps) == 1
    assert all(b.proto.ignore_rerun and b.proto.deferred_file_id for b in at.get("download_button"))
    metrics = _metrics(at)
    # Gold operators [MAX ...] (0, 16), [MIN 4 7 ] (3, 7) and [SM 1 2 ] (8, 12); chunks of
    # W = 4 tokens: [MIN 4 7 ] crosses the boundary before token 4, the others are reachable.
    found, inside = (int(x) for x in metrics["Found in chunks"].split(" / "))
    assert inside == 2 and 0 <= found <= inside
    assert metrics["Across a boundary"] == "1"
    assert metrics["Merges in brackets"].endswith("%")
    table = _final_beams_table(at)
    best = table.loc[table["weight"].idxmax()]
    assert round(found / 3, 3) == best["gold recall"]  # the drawn beam is the heaviest
    assert f"recovers **{found} of the 2** gold operators" in _texts(at)
    assert "the other **1** cross a chunk boundary and are unreachable" in _texts(at)
    misses = [d.value for d in at.dataframe if "why" in d.value.columns][0]
    why = dict(zip(misses["span"], misses["why"], strict=True))
    assert why["[3, 7)"].startswith("crosses a chunk boundary")
    assert all(w.startswith("inside a chunk") for s, w in why.items() if s != "[3, 7)")
    # Both trees: the chunk boundaries, one scale; the crossing operator red on the gold tree.
    gold, model = _figure(at, "Gold tree"), _figure(at, "Model tree (beam")
    for fig in (gold, model):
        assert _named(fig, "chunk boundaries")["x"][::3] == [3.5, 7.5, 11.5]
        assert fig["layout"]["showlegend"] is True
    assert gold["layout"]["yaxis"]["range"] == model["layout"]["yaxis"]["range"]
    assert gold["layout"]["height"] == model["layout"]["height"]
    inner = _named(gold, "internal nodes")
    red = [c == F.BOUNDARY for c in inner["marker"]["color"]]
    assert sum(red) == 1 and inner["text"][red.index(True)] == "MIN=4"
    names = {t["name"] for t in gold["data"] if t.get("legendgroup") == "legend"}
    assert names == {F.LEGEND_CROSSING[0], F.LEGEND_GOLD_OP[0]}


def test_long_inputs_draw_compact_trees_and_level_summaries():
    from rir_core.generate import Recipe, generate
    from rir_core.outer import schedule

    text = generate(Recipe(560, 600), 1, seed=3)[0].text
    at = _app(expr=text, k="2", w="10")
    _ok(at)
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum("collapsed subtrees" in spec for spec in charts) == 2  # gold and final trees
    summary = [d.value for d in at.dataframe if "widest chunk" in d.value.columns][0]
    assert list(summary["level"]) == [0, 1, 2] and summary["nodes"][0] == len(text.split())
    levels = schedule(len(text.split()), 10)  # e.g. 590 -> 59 chunks -> 6 chunks -> 1
    assert list(summary["merge steps"]) == [max(sizes) - 1 for sizes in levels]
    assert list(summary["chunks"]) == [len(sizes) for sizes in levels]
    at.select_slider(key="explorer.collapse").set_value(1).run()
    _ok(at)
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert not any("collapsed subtrees" in spec for spec in charts)


def test_show_one_chunk_of_a_long_input_on_both_trees():
    """#18 item 4: 'Show' offers the whole input and each level-0 chunk; a chunk draws both
    trees over its tokens only; another expression starts again from the whole input."""
    from rir_core.generate import Recipe, generate

    text = generate(Recipe(95, 105), 1, seed=7)[0].text
    at = _app(expr=text, w="30")
    _ok(at)
    show = at.selectbox(key="explorer.tree_part")
    n = len(text.split())
    assert show.value == (0, n)
    assert show.options[:3] == [f"the whole input ({n} tokens)", "chunk 0: tokens 0-29",
                                "chunk 1: tokens 30-59"]  # fmt: skip
    show.set_value((30, 60)).run()
    _ok(at)
    for title in ("Gold tree", "Model tree (beam"):
        fig = _figure(at, title)
        assert "tokens 30-59" in fig["layout"]["title"]["text"]
        assert fig["layout"]["xaxis"]["ticktext"] == text.split()[30:60]
        spans = _named(fig, "internal nodes")["customdata"]
        assert spans and all(a >= 30 and b <= 60 for a, b in spans)
    assert any("Showing chunk 1: tokens 30-59" in c.value for c in at.caption)
    at.text_input(key="settings.expression").set_value(LONG_OTHER).run()
    _ok(at)
    assert at.selectbox(key="explorer.tree_part").value == (0, len(LONG_OTHER.split()))


LONG_OTHER = "[MAX " + " ".join(["[MIN 1 2 ]"] * 12) + " ]"  # 50 tokens


def _named(fig: dict, name: str) -> dict:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in fig["data"]]
    return found[0]


def _amber_chunks(level_trace: dict) -> set[int]:
    """Chunks of the outer figure's level trace drawn in the current-chunk colour."""
    from app import figures as F

    colors = level_trace["marker"]["color"]
    pairs = zip(level_trace["customdata"], colors, strict=True)
    return {cd[1] for cd, c in pairs if c == F.CURRENT_CHUNK}


def test_the_charts_follow_the_level_chunk_and_step():
    """The figure JSON the charts carry: bars = class probabilities, the outer picture's band
    and amber chunk follow the view, the beam rows and heat strip change with the step."""
    at = _app(expr=CHUNKED, w="4", k="3")
    _ok(at)
    bars = _named(_figure(at, "Class probabilities"), "probability")
    probs = dict(zip(bars["x"], bars["y"], strict=True))
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert str(max(probs, key=probs.get)) == _metrics(at)["Prediction"]

    outer = _figure(at, "Outer recursion")
    assert outer["layout"]["shapes"][0]["y0"] == -0.5  # the band on level 0
    level0 = _named(outer, "level 0")
    amber = _amber_chunks(level0)
    assert amber == {0}
    merges_1 = _named(_figure(at, "Beams before this merge"), "merges")
    heat_1 = _named(_figure(at, "Pair probabilities per beam"), "pair probabilities")["customdata"]

    at.button(key="explorer.step.next").click().run()
    merges_2 = _named(_figure(at, "Beams before this merge"), "merges")
    assert merges_2["hovertext"] != merges_1["hovertext"]
    heat_2 = _named(_figure(at, "Pair probabilities per beam"), "pair probabilities")["customdata"]
    assert sum(k == 0 for k, _, _ in heat_2) == sum(k == 0 for k, _, _ in heat_1) - 1

    at.selectbox(key="explorer.chunk").select(2).run()
    level0 = _named(_figure(at, "Outer recursion"), "level 0")
    amber = _amber_chunks(level0)
    assert amber == {2}
    at.button(key="explorer.level.next").click().run()
    assert _figure(at, "Outer recursion")["layout"]["shapes"][0]["y0"] == 0.5  # level 1


def test_autoplay_steps_through_chunks_and_levels_then_stops():
    from app.pages.explorer import next_position  # noqa: F401 - importable without a run

    at = _app(expr=CHUNKED, w="4", k="3")
    at.toggle(key="explorer.autoplay").set_value(True).run()
    _ok(at)
    assert at.toggle(key="explorer.autoplay").value
    assert "**Merge step 1 of 3** in chunk 0 of level 0" in _texts(at)  # the clock starts
    seen = []
    for _ in range(20):
        at.session_state["explorer.autoplay.last"] = -1e9  # the next step is due
        at.run()
        _ok(at)
        seen.append((at.session_state["explorer.level"], at.session_state["explorer.chunk"],
                     at.session_state["explorer.step"]))  # fmt: skip
        if not at.toggle(key="explorer.autoplay").value:
            break
    # 4 chunks of 4 nodes (3 steps each), then one chunk of 4 at level 1 (3 steps): 14 more
    # positions after the first; the 15th due step finds the end and switches autoplay off.
    expected = [(0, c, s) for c in range(4) for s in (1, 2, 3)][1:] + [(1, 0, s) for s in (1, 2, 3)]
    assert seen[: len(expected)] == expected
    assert not at.toggle(key="explorer.autoplay").value
    assert at.query_params["level"] in ("1", ["1"]) and at.query_params["step"] in ("3", ["3"])


def test_the_drawn_final_beam_is_in_the_link():
    at = _app(expr=CHUNKED, w="4", k="3")
    _ok(at)
    at.selectbox(key="explorer.final_beam").select(1).run()
    _ok(at)
    assert at.query_params["beam"] in ("1", ["1"])
    assert _figure(at, "Model tree (beam 1)")
    reopened = _app(expr=CHUNKED, w="4", k="3", beam="1")
    _ok(reopened)
    assert reopened.selectbox(key="explorer.final_beam").value == 1
    assert _figure(reopened, "Model tree (beam 1)")
    assert not reopened.warning or all("Session State" not in w.value for w in reopened.warning)
    # A beam that does not exist falls back to the best one.
    assert _app(expr=CHUNKED, w="4", k="3", beam="9").selectbox(key="explorer.final_beam").value < 3


def test_teacher_mode_enlarges_every_chart():
    from app import teacher

    normal = _figures(_app(expr=CHUNKED, w="4", k="3"))
    big = _figures(_app(expr=CHUNKED, w="4", k="3", teacher="1"))
    assert len(big) == len(normal) == 6
    for fig in big:
        assert fig["layout"]["font"]["size"] == teacher.CHART_FONT_PX
        assert fig["layout"]["xaxis"]["tickfont"]["size"] == teacher.CHART_TICK_PX
    assert all("size" not in f["layout"].get("font", {}) for f in normal)

    # The same data, only larger text (the trees' node labels too).
    def without_text_size(fig):
        return [{k: v for k, v in t.items() if k != "textfont"} for t in fig["data"]]

    assert [without_text_size(f) for f in big] == [without_text_size(f) for f in normal]
    labels = [t for f in big for t in f["data"] if t.get("mode") == "markers+text"]
    assert labels and all(t["textfont"]["size"] == teacher.CHART_TICK_PX for t in labels)
