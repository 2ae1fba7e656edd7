"""The app starts headless under Streamlit's AppTest, without a browser, on its Explorer page."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"
DEFAULT_EXPRESSION = "[MAX 2 9 [MIN 4 7 ] 0 ]"


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setenv("RIR_APP_MODEL", "random-small")  # a tiny random model: fast


def _expression_box(at: AppTest):
    boxes = [box for box in at.text_input if box.label == "ListOps expression"]
    assert len(boxes) == 1, f"text inputs found: {[box.label for box in at.text_input]}"
    return boxes[0]


def test_main_page_runs_and_has_the_expression_box():
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60).run()
    assert not at.exception
    assert [title.value for title in at.title] == ["RIR Explorer"]
    assert _expression_box(at).value == DEFAULT_EXPRESSION

    _expression_box(at).input("[SM 1 2 [MED 3 4 5 ] ]").run()
    assert not at.exception
    assert _expression_box(at).value == "[SM 1 2 [MED 3 4 5 ] ]"
    assert {m.label: m.value for m in at.metric}["Ground truth"] == "7"  # (1 + 2 + 4) mod 10
