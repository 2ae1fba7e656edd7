"""The Training page's figures and summaries (app/training_figures.py), checked on their data.

The inputs are what ``app.run_log.read_log`` gives the page: step records, evaluation records
and the worker's parse records; small synthetic logs here, one real parse of a tiny model.
"""

from __future__ import annotations

import math

import pytest
import torch

from app import job_worker, jobs, run_log
from app import training_figures as TF
from app.figures import GOLD, PRIMARY


def _steps(n: int) -> list[dict]:
    """``n`` step records as the log reader gives them: loss falls, accuracy rises."""
    rows = []
    for i in range(1, n + 1):
        row = {
            "step": i, "epoch": i / 10, "loss": 2.3 / (1 + i / 100),
            "accuracy": 1 - 0.9 / (1 + i / 100), "lr": 3e-3 if i <= n // 2 else 1.5e-3,
            "elapsed_s": i * 0.5, "eta_s": (n - i) * 0.5, "seq_per_s": 64.0,
        }  # fmt: skip
        rows.append(row)
    return rows


def _trace(fig, name: str):
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def _hlines(fig) -> list[float]:
    return [s.y0 for s in fig.layout.shapes if s.y0 == s.y1]


# -- ema, thin ----------------------------------------------------------------------------------


def test_ema_is_bias_corrected_and_skips_missing_values():
    assert TF.ema([]) == []
    assert TF.ema([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0
    # alpha 0.5: averages 0, then (0.5*0 + 0.5*10) / (1 - 0.25) = 20/3
    assert TF.ema([0.0, 10.0], alpha=0.5) == pytest.approx([0.0, 20 / 3])
    # A missing or non-finite value repeats the average so far; none so far stays None.
    assert TF.ema([None, 4.0, None, float("nan"), 4.0]) == pytest.approx([None, 4.0, 4.0, 4.0, 4.0])
    out = TF.ema([1.0, float("inf"), 3.0], alpha=0.5)
    assert out[1] == out[0] == 1.0 and out[2] == pytest.approx((0.25 + 1.5) / 0.75)


def test_thin_keeps_short_logs_and_always_the_last_row():
    rows = [{"step": i} for i in range(1, 601)]
    assert TF.thin(rows) is rows  # at most MAX_POINTS: untouched
    assert TF.thin([]) == []
    rows = [{"step": i} for i in range(1, 1001)]  # stride 4 for 300 points
    picked = TF.thin(rows, max_points=300)
    assert [r["step"] for r in picked] == [*range(1, 1001, 4), 1000]
    rows = [{"step": i} for i in range(1, 1202)]  # stride 3 for 600: index 1200 is picked
    picked = TF.thin(rows)
    assert [r["step"] for r in picked] == list(range(1, 1202, 3)) and len(picked) <= 601


# -- curves ---------------------------------------------------------------------------------------


def test_loss_figure_plots_each_step_and_its_moving_average():
    steps = _steps(30)
    fig = TF.loss_figure(steps)
    assert fig.layout.title.text == "Training loss"
    raw, smooth = _trace(fig, "loss (each step)"), _trace(fig, "loss (smoothed)")
    assert list(raw.x) == list(smooth.x) == list(range(1, 31))
    assert list(raw.y) == [s["loss"] for s in steps]
    assert list(smooth.y) == pytest.approx(TF.ema([s["loss"] for s in steps]))
    assert smooth.y[-1] > raw.y[-1]  # a falling loss: the average lags behind
    assert _hlines(fig) == [pytest.approx(math.log(10))]  # chance: ln 10


def test_a_long_log_is_thinned_after_smoothing():
    steps = _steps(3000)
    losses = [s["loss"] for s in steps]
    fig = TF.loss_figure(steps)
    raw, smooth = _trace(fig, "loss (each step)"), _trace(fig, "loss (smoothed)")
    assert len(raw.x) <= TF.MAX_POINTS + 1 and raw.x[0] == 1 and raw.x[-1] == 3000
    assert list(raw.y) == [losses[x - 1] for x in raw.x]
    # Every point is the average over all steps up to it, not over the kept points only.
    full = TF.ema(losses)
    assert list(smooth.y) == pytest.approx([full[x - 1] for x in smooth.x])
    assert smooth.y[-1] != pytest.approx(TF.ema(list(raw.y))[-1], abs=1e-6)


def test_accuracy_figure_has_dev_points_at_the_evaluations():
    steps = _steps(40)
    evals = [
        {"step": 10, "dev_accuracy": 0.25, "best_dev_accuracy": 0.25},
        {"step": 20, "dev_accuracy": 0.2, "best_dev_accuracy": 0.25},
        {"step": 40, "dev_accuracy": 0.5, "best_dev_accuracy": 0.5},
    ]
    fig = TF.accuracy_figure(steps, evals)
    assert fig.layout.title.text == "Accuracy: training batches and dev set"
    train = _trace(fig, "train (each step)")
    assert list(train.x) == list(range(1, 41))
    assert list(train.y) == [s["accuracy"] for s in steps]
    assert list(_trace(fig, "train (smoothed)").y) == pytest.approx(
        TF.ema([s["accuracy"] for s in steps])
    )
    dev = _trace(fig, "dev")
    assert list(dev.x) == [10, 20, 40] and list(dev.y) == [0.25, 0.2, 0.5]
    assert dev.mode == "lines+markers"
    assert list(fig.layout.yaxis.range) == [0, 1.02] and fig.layout.yaxis.tickformat == ".0%"
    assert _hlines(fig) == [pytest.approx(TF.CHANCE)]


def test_lr_figure_traces_the_learning_rate_as_steps():
    steps = _steps(20)  # halved half-way, as the plateau scheduler does
    fig = TF.lr_figure(steps)
    trace = _trace(fig, "learning rate")
    assert list(trace.x) == list(range(1, 21))
    assert list(trace.y) == [3e-3] * 10 + [1.5e-3] * 10
    assert trace.line.shape == "hv"  # held until it changes, not interpolated
    assert fig.layout.yaxis.rangemode == "tozero"


def test_an_empty_log_gives_empty_curves():
    for fig in (TF.loss_figure([]), TF.accuracy_figure([], []), TF.lr_figure([])):
        assert fig.data and all(len(t.x) == 0 and len(t.y) == 0 for t in fig.data)
    # Steps but no evaluation yet: the dev curve is there, empty.
    fig = TF.accuracy_figure(_steps(5), [])
    assert len(_trace(fig, "dev").x) == 0 and len(_trace(fig, "train (each step)").x) == 5


def test_a_step_without_a_loss_is_a_gap_in_the_raw_curve_only():
    steps = _steps(3)
    steps[1]["loss"] = None
    fig = TF.loss_figure(steps)
    assert _trace(fig, "loss (each step)").y[1] is None
    smooth = _trace(fig, "loss (smoothed)").y
    assert smooth[1] == smooth[0] == pytest.approx(steps[0]["loss"])


# -- parse, tables, durations -------------------------------------------------------------------


@pytest.fixture(scope="module")
def parse_record(tmp_path_factory) -> dict:
    """The record the worker writes at an evaluation (tiny random model), read back."""
    from rir_core.model import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(hidden_size=16, scorer_slice=8, scorer_hidden=8, beam_size=2)
    folder = tmp_path_factory.mktemp("job")
    job_worker.write_parse(folder, model, jobs.WATCH_EXPRESSION, 10, 0.3)
    return run_log.load_parse(folder, 10)


def test_parse_figure_titles_and_gold_nodes(parse_record):
    record = parse_record
    n = len(record["tokens"])
    fig = TF.parse_figure(record)
    assert fig.layout.title.text == (
        f"after step 10 · dev accuracy 30% · predicts {record['prediction']} "
        f"(true value {record['ground_truth']})"
    )
    assert len(_trace(fig, "leaves").x) == n and len(_trace(fig, "internal nodes").x) == n - 1
    # The root spans the whole expression, always a gold constituent: green; so is [MIN 4 7 ]
    # if the model happened to build it. With no gold spans nothing is green.
    colours = list(_trace(fig, "internal nodes").marker.color)
    assert colours[0] == GOLD and set(colours) <= {GOLD, PRIMARY}
    bare = TF.parse_figure({**record, "gold_spans": []})
    assert set(_trace(bare, "internal nodes").marker.color) == {PRIMARY}

    start = TF.parse_figure({**record, "step": 0, "dev_accuracy": None})
    assert start.layout.title.text.startswith("before training · predicts ")
    assert "dev accuracy" not in start.layout.title.text


def test_gold_recall_reads_the_best_beam(parse_record):
    beam = parse_record["final_beams"][0]
    assert TF.gold_recall(parse_record) == beam["gold_recall"]
    assert 0 < beam["gold_recall"] <= 1  # the root at least
    older = {"final_beams": [{k: v for k, v in beam.items() if k != "gold_recall"}]}
    assert TF.gold_recall(older) is None


def test_eval_table_has_one_row_per_split_in_order():
    table = TF.eval_table({"dev": {"accuracy": 0.4, "n": 50}, "lra": {"accuracy": 0.125, "n": 8}})
    assert list(table.columns) == ["split", "accuracy", "examples"]
    assert table.to_dict("records") == [
        {"split": "dev", "accuracy": 0.4, "examples": 50},
        {"split": "lra", "accuracy": 0.125, "examples": 8},
    ]
    assert list(TF.eval_table({}).columns) == ["split", "accuracy", "examples"]


@pytest.mark.parametrize(
    "seconds, text",
    [
        (None, "?"), (float("nan"), "?"), (float("inf"), "?"), (-3.0, "0 s"), (0, "0 s"),
        (44.6, "45 s"), (59.4, "59 s"), (59.6, "1 min 00 s"), (200, "3 min 20 s"),
        (3599, "59 min 59 s"), (3600, "1 h 00 min"), (7500, "2 h 05 min"),
    ],
)  # fmt: skip
def test_format_duration(seconds, text):
    assert TF.format_duration(seconds) == text


# -- progress -------------------------------------------------------------------------------------


def test_progress_before_the_first_step_says_preparing():
    p = TF.progress({"epochs": 4}, 480, None)
    assert p.fraction == 0.0 and p.text.startswith("preparing")


def test_progress_uses_the_trainers_eta_without_a_time_limit():
    last = {"step": 120, "epoch": 1.5, "eta_s": 200.0, "elapsed_s": 66.0, "seq_per_s": 79.6}
    p = TF.progress({"epochs": 4, "max_minutes": None}, 480, last)
    assert p.fraction == pytest.approx(0.25)
    assert p.text == "step 120 of 480 · epoch 1.50 of 4 · ETA 3 min 20 s · 80 examples/s"


def test_progress_a_time_limit_caps_the_eta_and_moves_the_bar():
    settings = {"epochs": 4, "max_minutes": 5.0}
    last = {"step": 20, "epoch": 0.25, "eta_s": 1000.0, "elapsed_s": 60.0, "seq_per_s": 64.0}
    p = TF.progress(settings, 480, last)
    assert "ETA 4 min 00 s" in p.text  # 5 min limit, 1 min gone: the limit ends it first
    assert p.fraction == pytest.approx(60 / 300)  # time share beats 20/480 steps
    # A resumed run: only this invocation's time counts against the limit.
    p = TF.progress(settings, 480, {**last, "elapsed_s": 160.0}, elapsed_before=100.0)
    assert "ETA 4 min 00 s" in p.text and p.fraction == pytest.approx(60 / 300)
    # The trainer's own ETA wins when it is sooner; without one the limit gives it.
    assert "ETA 30 s" in TF.progress(settings, 480, {**last, "eta_s": 30.0}).text
    assert "ETA 4 min 00 s" in TF.progress(settings, 480, {**last, "eta_s": None}).text
    # Past the limit: the bar is full, never over.
    over = TF.progress(settings, 480, {**last, "elapsed_s": 900.0})
    assert over.fraction == 1.0 and "ETA 0 s" in over.text


def test_progress_leaves_out_what_it_does_not_know():
    p = TF.progress({}, None, {"step": 7, "epoch": None, "eta_s": None, "seq_per_s": None})
    assert p.text == "step 7 · ETA ?" and p.fraction == 0.0
    p = TF.progress({"epochs": None}, 1000, {"step": 1500, "epoch": 2.0, "eta_s": 0.0})
    assert p.text == "step 1,500 of 1,000 · epoch 2.00 · ETA 0 s" and p.fraction == 1.0


# -- composition_figure -------------------------------------------------------------------------


def _grouped_evals() -> list[dict]:
    """Two evaluations as the trainer logs them: chunked training far above held out."""

    def groups(u, c, long=None, n_long=0):
        return {
            "unchunked": {"accuracy": u, "n": 854}, "chunked": {"accuracy": c, "n": 130},
            "long": {"accuracy": long, "n": n_long},
        }  # fmt: skip

    return [
        {"step": 350, "dev_accuracy": 0.9, "dev_groups": groups(0.98, 0.55, 0.3, 16),
         "train_groups": groups(0.97, 0.6)},
        {"step": 700, "dev_accuracy": 0.92, "dev_groups": groups(0.99, 0.58, 0.35, 16),
         "train_groups": groups(0.99, 0.8),
         "probe": {"split": "len_200_300", "accuracy": 0.41, "n": 100}},
    ]  # fmt: skip


def test_composition_figure_draws_held_out_beside_training_per_group() -> None:
    fig = TF.composition_figure(_grouped_evals())
    held = _trace(fig, "chunked (cut into chunks), held out (n 130)")
    trained = _trace(fig, "chunked (cut into chunks), training (n 130)")
    assert list(held.x) == [350, 700] and list(held.y) == [0.55, 0.58]
    assert list(trained.y) == [0.6, 0.8]  # the gap a class should see: memorization
    assert held.line.dash == "solid" and trained.line.dash == "dash"
    assert held.line.color == trained.line.color
    assert list(_trace(fig, "longer than training, held out (n 16)").y) == [0.3, 0.35]
    names = [t.name for t in fig.data]
    assert not any(n.startswith("longer than training, training") for n in names)  # n 0: none
    probe = _trace(fig, "len_200_300 probe (n 100)")
    assert list(probe.x) == [700] and list(probe.y) == [0.41]
    assert TF.CHANCE in _hlines(fig)


def test_composition_figure_is_none_for_logs_without_groups() -> None:
    assert TF.composition_figure([]) is None
    assert TF.composition_figure([{"step": 10, "dev_accuracy": 0.3}]) is None
