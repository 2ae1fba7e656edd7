"""What the AppTest suites read off a page: the figure JSON its plotly charts carry."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest


def figures(at: AppTest) -> list[dict]:
    """Every plotly chart of the page, as the figure dict the browser receives."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def figure(at: AppTest, title_part: str) -> dict:
    """The one chart whose title contains ``title_part``."""
    found = [f for f in figures(at) if title_part in f["layout"]["title"]["text"]]
    assert len(found) == 1, [f["layout"]["title"]["text"] for f in figures(at)]
    return found[0]
