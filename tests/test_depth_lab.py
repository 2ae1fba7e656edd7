"""The depth-bound lab: the four depth formulas, the chart's data, the model runs."""

from __future__ import annotations

import math

import pytest

from app import depth_lab as D
from rir_core.config import ModelConfig
from rir_core.model import build_model
from rir_core.outer import schedule


@pytest.mark.parametrize(
    ("n", "width", "rir"),
    [
        (1, 30, 0),  # one token: nothing to merge
        (2, 30, 1),
        (44, 30, 43),  # 44 < 1.5 * 30 = 45: one chunk of 44 nodes
        (45, 30, 29 + 1),  # 45 >= 45: chunks of 30 and 15, then 2 roots (1 merge)
        (100, 30, 29 + 3),  # 4 chunks (30, 30, 30, 10), then 4 roots
        (1000, 30, 62),  # SPEC 3: 34 chunks of <= 30, then 34 roots (1.5 * 30 > 34: one chunk)
        (1000, 10, 9 + 9 + 9),  # 100 chunks -> 10 chunks -> 1
    ],
)
def test_rir_exact_depth_follows_the_one_and_a_half_w_rule(n, width, rir):
    assert D.depths(n, width)["rir"] == rir


def test_rir_exact_depth_is_the_sum_of_widest_chunks():
    for n in (3, 17, 99, 450, 2001, 9999):
        for width in (2, 5, 30, 100):
            levels = schedule(n, width)
            assert D.depths(n, width)["rir"] == sum(max(sizes) - 1 for sizes in levels)
            for sizes in levels[:-1]:
                assert 2 * sum(sizes) >= 3 * width  # chunked only when n >= 1.5 W
                assert max(sizes) <= width
            assert 2 * sum(levels[-1]) < 3 * width or len(levels[-1]) == 1


def test_the_other_formulas():
    for n in (2, 3, 10, 100, 1000, 1024, 1025):
        d = D.depths(n, 30)
        assert d["ebt"] == n - 1
        assert d["balanced"] == math.ceil(math.log2(n))
        assert math.isclose(d["rir_bound"], 30 * math.log(n) / math.log(30))
    assert math.isclose(D.depths(900, 30)["rir_bound"], 60.0)  # W * log_W(W^2) = 2 W
    assert D.depths(1, 30)["balanced"] == 0 and D.depths(1, 30)["ebt"] == 0


def test_curves_figure_has_log_axes_the_formulas_and_the_marked_expression():
    fig = D.depth_curves_figure(30, n_pick=1000, measured=(101, 32), n_max=2000)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    by_name = {t.name: t for t in fig.data}
    rir = by_name["RIR exact (1.5·W rule)"]
    xs = list(rir.x)
    assert xs == sorted(xs) and xs[0] == 2 and xs[-1] == 2000
    assert rir.y[xs.index(1000)] == 62 and rir.y[xs.index(100)] == 32
    ebt = by_name["EBT/BT-GRC n − 1"]
    assert ebt.y[list(ebt.x).index(1000)] == 999
    star = by_name["this expression (101 tokens, 32 steps)"]
    assert list(star.x) == [101] and list(star.y) == [32] and star.marker.symbol == "star"
    picked = by_name["n = 1000"]
    assert list(picked.y) == [62, pytest.approx(D.depths(1000, 30)["rir_bound"]), 999, 10]


def test_table_rows():
    rows = D.depth_table([100, 1000], 30)
    assert rows[1]["RIR exact"] == 62 and rows[1]["chunks per level"] == "34 → 1"
    assert rows[0]["EBT/BT n − 1"] == 99 and rows[0]["balanced ⌈log₂ n⌉"] == 7
    assert rows[0]["levels"] == 2


def test_run_model_measures_depth_and_time_per_model_type():
    text = "[SM " + "1 " * 40 + "]"  # 42 tokens
    depths = {}
    for model_type in D.MODEL_TYPES:
        cfg = ModelConfig.for_model(
            model_type, hidden_size=16, scorer_slice=8, scorer_hidden=8, s4d_state_size=8
        )
        model = build_model(cfg).eval()
        settings = {"chunk_width": 10} if model_type == "rir_ebt_grc" else {}
        depth, seconds, pred = D.run_model(model, text, repeats=1, **settings)
        assert seconds > 0 and 0 <= pred <= 9
        depths[model_type] = depth
    assert depths == {
        "rir_ebt_grc": D.depths(42, 10)["rir"],
        "ebt_grc": 41,
        "bt_grc": 41,
        "bbt_grc": 6,
    }
    runs = [
        D.ModelRun(t, "untrained (random weights)", t == "ebt_grc", d, 0.01, 3)
        for t, d in depths.items()
    ]
    rows = D.runs_table(runs, truth=3)
    assert [r["prediction"] for r in rows] == ["untrained", "3 ✓", "untrained", "untrained"]
    fig = D.runs_figure(runs)
    assert list(next(t for t in fig.data if t.name == "measured depth").y) == list(depths.values())


def test_curve_points_are_dense_enough_for_the_steps():
    pts = D.curve_points(10_000)
    assert pts[:3] == [2, 3, 4] and pts[-1] == 10_000
    assert all(b / a < 1.05 for a, b in zip(pts, pts[1:], strict=False) if a >= 200)
