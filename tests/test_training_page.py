"""The Training page under Streamlit's AppTest (no browser, no real training: the worker is a
sleeping stand-in where a job is started; tests/test_jobs.py trains for real)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from job_helpers import fake_active_job, fake_finished_job, tiny_checkpoint
from streamlit.testing.v1 import AppTest

from app import jobs, model_store, state

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"
JOB = "20240102-030405-abcd"


@pytest.fixture(autouse=True)
def environment(tmp_path, monkeypatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv(state.MODEL_ENV, "random-small")
    monkeypatch.setenv(jobs.RUNS_ENV, str(runs))
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "2")
    return runs


@pytest.fixture
def sleepers():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def sleeping_workers(sleepers, monkeypatch):
    """Jobs start a sleeping stand-in (named like a worker) instead of training."""

    def fake_spawn(job_dir: Path, extra: list[str]) -> int:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(300)", "app.job_worker", str(job_dir)]
        )
        sleepers.append(proc)
        return proc.pid

    monkeypatch.setattr(jobs, "_spawn", fake_spawn)


def _page(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.switch_page("pages/training.py")
    at.query_params.update(query)
    return at.run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _button(at: AppTest, key: str):
    return at.button(key=f"training.{key}")


def test_the_page_shows_the_estimate_before_starting():
    at = _page()
    _ok(at)
    assert [t.value for t in at.title] == ["Training"]
    assert at.selectbox(key="training.preset").value == "classroom"
    info = _texts(at.info)
    assert "Estimated time: about" in info and "steps" in info, info
    assert any("Formula from hidden size" in c.value for c in at.caption)
    assert not _button(at, "start").disabled

    at.selectbox(key="training.preset").select("cpu").run()
    _ok(at)
    assert at.number_input(key="training.hidden_size").value == 128  # the paper's model
    cpu_info = _texts(at.info)
    assert "time limit ends it first" in cpu_info  # the cpu preset stops after 60 minutes

    at.number_input(key="training.hidden_size").set_value(48).run()
    assert any("Custom settings, based on the cpu preset" in c.value for c in at.caption)


def test_early_stopping_can_be_turned_off_and_reaches_the_job(environment, sleeping_workers):
    at = _page()
    assert at.number_input(key="training.patience").value == 0  # the classroom preset's
    assert "Early stopping may end it sooner" not in _texts(at.info)
    at.number_input(key="training.patience").set_value(4).run()
    assert "Early stopping may end it sooner" in _texts(at.info)
    at.number_input(key="training.patience").set_value(0).run()
    _ok(at)
    assert "Early stopping may end it sooner" not in _texts(at.info)
    _button(at, "start").click().run()
    _ok(at)
    job_id = at.query_params["job"]
    job_id = job_id[0] if isinstance(job_id, list) else job_id
    record = json.loads((environment / job_id / "job.json").read_text())
    assert record["settings"]["patience"] == 0
    assert jobs.JobSettings.from_dict(record["settings"]).overrides()[1]["patience"] == 0
    _button(at, "stop").click().run()


def test_bad_settings_get_a_sentence_and_no_start_button():
    at = _page()
    at.text_input(key="training.watch").input("[MAX 2 9").run()
    _ok(at)
    assert "watched expression is not ListOps" in _texts(at.error)
    assert _button(at, "start").disabled


def test_full_server_shows_the_cap_message(environment, sleepers):
    sleepers.append(fake_active_job(environment, "20240101-000000-aaaa", owner="someone"))
    sleepers.append(fake_active_job(environment, "20240101-000000-bbbb", owner="else"))
    at = _page()
    _ok(at)
    warning = _texts(at.warning)
    assert "already running 2 training job(s)" in warning and "RIR_MAX_JOBS=2" in warning
    assert _button(at, "start").disabled


def test_start_shows_the_run_and_one_run_per_session(environment, sleeping_workers):
    at = _page()
    _button(at, "start").click().run()
    _ok(at)
    job_id = at.query_params["job"]
    job_id = job_id[0] if isinstance(job_id, list) else job_id
    assert (environment / job_id / "job.json").is_file()
    assert f"Run {job_id}" in _texts(at.subheader)
    assert "preparing" in at.get("progress")[0].proto.text
    assert _button(at, "start").disabled  # one running job per session
    assert "This session's run" in _texts(at.info)

    _button(at, "stop").click().run()
    _ok(at)
    assert not jobs.get_job(job_id).active


def test_a_job_in_the_url_shows_its_curves_and_parse(environment):
    fake_finished_job(environment, JOB)
    at = _page(job=JOB)
    _ok(at)
    assert f"Run {JOB}" in _texts(at.subheader)
    assert "finished" in _texts(at.markdown)
    charts = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    titles = [spec["layout"]["title"]["text"] for spec in charts.values()]
    assert titles[:3] == [
        "Training loss",
        "Accuracy: training batches and dev set",
        "Learning rate",
    ]
    loss = next(s for s in charts.values() if s["layout"]["title"]["text"] == "Training loss")
    assert len(loss["data"][0]["x"]) == 20
    assert "after step 20 · dev accuracy 40%" in titles[3]
    assert at.select_slider(key="training.parse_step").value == 20
    at.select_slider(key="training.parse_step").set_value(0).run()
    parse = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert "before training" in parse["layout"]["title"]["text"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best dev accuracy"] == "40.0%"

    _button(at, "open").click().run()
    _ok(at)
    assert [t.value for t in at.title] == ["RIR Explorer"]
    assert at.selectbox(key="model.choice").value == f"run:{JOB}"
    assert any(f"from run {JOB} (best)" in c.value for c in at.caption)  # the model panel names it
    assert at.slider(key="settings.beam_size").value == 2  # the run's K, not the default's 7


def test_a_run_with_length_groups_shows_the_composition_chart(environment):
    """The trainer logs accuracy per length group: the page draws held out beside training."""
    job_dir = fake_finished_job(environment, JOB)
    lines = [json.loads(x) for x in (job_dir / "log.jsonl").read_text().splitlines()]
    for e in lines:
        if e["event"] == "eval":
            e["dev_groups"] = {
                "unchunked": {"accuracy": 0.9, "n": 40}, "chunked": {"accuracy": 0.3, "n": 10},
                "long": {"accuracy": None, "n": 0},
            }  # fmt: skip
            e["train_groups"] = {
                "unchunked": {"accuracy": 0.95, "n": 300}, "chunked": {"accuracy": 0.7, "n": 20},
                "long": {"accuracy": None, "n": 0},
            }  # fmt: skip
    (job_dir / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    at = _page(job=JOB)
    _ok(at)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    comp = [c for c in charts if c["layout"]["title"]["text"].startswith("Chunk composition")]
    assert len(comp) == 1
    names = [t["name"] for t in comp[0]["data"]]
    assert "chunked (cut into chunks), held out (n 10)" in names
    assert "chunked (cut into chunks), training (n 20)" in names
    assert any("memorizes" in c.value for c in at.caption)


def test_an_unknown_job_in_the_url_is_a_sentence():
    at = _page(job="../../etc")
    _ok(at)
    assert "There is no run" in _texts(at.warning)


def _upload(at: AppTest, files) -> AppTest:
    at.get("file_uploader")[0].set_value(files)
    return at.run()


def test_a_bad_upload_gets_one_clear_sentence(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    at = _page()
    pickled = pickle.dumps({"weights": [1, 2, 3]})
    at = _upload(at, [
        ("model.safetensors", pickled, "application/octet-stream"),
        ("model.json", (ckpt / "model.json").read_bytes(), "application/json"),
    ])  # fmt: skip
    _ok(at)
    error = _texts(at.error)
    assert "Not a usable checkpoint" in error and "never unpickled" in error, error
    assert "\n" not in error and "Traceback" not in error and str(tmp_path) not in error


def test_a_good_upload_joins_the_model_picker(tmp_path, environment):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    at = _page()
    at = _upload(at, ("mine.zip", model_store.zip_checkpoint(ckpt), "application/zip"))
    _ok(at)
    assert "Added to the model picker: Uploaded: mine-" in _texts(at.success)
    _button(at, "open_upload").click().run()
    _ok(at)
    assert at.selectbox(key="model.choice").value.startswith("upload:mine-")


def test_runs_list_download_and_a_finished_evaluation(environment):
    job_dir = fake_finished_job(environment, JOB)
    (job_dir / "eval").mkdir()
    (job_dir / "eval" / "state.json").write_text(
        json.dumps({"pid": None, "limit": 5, "checkpoint": str(job_dir / "best")})
    )
    (job_dir / "eval" / "out.txt").write_text("dev\taccuracy 0.4000\tn 5\n")
    splits = {"dev": {"accuracy": 0.4, "n": 5}, "lra": {"accuracy": 0.2, "n": 5}}
    (job_dir / "eval" / "result.json").write_text(json.dumps({"splits": splits}))
    at = _page()
    _ok(at)
    table = at.dataframe[0].value  # the Runs tab
    assert list(table["run"]) == [JOB] and list(table["status"]) == ["finished"]
    _button(at, "show").click().run()
    _ok(at)
    assert f"Run {JOB}" in _texts(at.subheader)
    assert "Reached max_steps at step 20 (of 20 planned)." in _texts(at.caption)
    assert at.get("download_button")[0].proto.label == "Download the model"
    evaluated = at.dataframe[0].value
    assert list(evaluated["split"]) == ["dev", "lra"] and list(evaluated["accuracy"]) == [0.4, 0.2]
    assert "First 5 examples of each split; the run's best/ model." in _texts(at.caption)
    assert not _button(at, "evaluate").disabled


def test_the_model_picker_follows_the_url_and_refuses_paths(environment):
    fake_finished_job(environment, JOB)
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.query_params["model"] = f"run:{JOB}"
    at.run()
    _ok(at)
    assert at.selectbox(key="model.choice").value == f"run:{JOB}"
    assert any(f"from run {JOB} (best)" in c.value for c in at.caption)
    assert at.query_params["model"] in (f"run:{JOB}", [f"run:{JOB}"])  # links keep it

    at.selectbox(key="model.choice").select("").run()  # back to the default model
    _ok(at)
    assert any("untrained (random weights)" in w.value for w in at.warning)

    for bad in ("run:../../etc", "upload:/etc/passwd", "/etc/passwd"):
        at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
        at.query_params["model"] = bad
        at.run()
        _ok(at)
        assert at.selectbox(key="model.choice").value == ""


def _live_job_with_log(root: Path, sleepers, settings: dict, events: list[dict]) -> None:
    """An active job (sleeping stand-in worker) of 480 planned steps with this log so far."""
    sleepers.append(fake_active_job(root, JOB, owner="someone"))
    record = json.loads((root / JOB / "job.json").read_text())
    record.update(planned_steps=480, settings={**record["settings"], **settings})
    (root / JOB / "job.json").write_text(json.dumps(record))
    lines = [{"event": "start", "recipe": {}, "device": "cpu"}, *events]
    (root / JOB / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))


def _step(i: int, **fields) -> dict:
    return {"event": "step", "step": i, "epoch": i / 80, "loss": 2.0, "accuracy": 0.2,
            "lr": 3e-3, "seq_per_s": 79.6, **fields}  # fmt: skip


def test_a_running_job_shows_its_progress_and_eta(environment, sleepers):
    # No time limit: the ETA is the trainer's own (eta_s of the newest step, 200 s).
    events = [_step(i, elapsed_s=i * 0.5, eta_s=(480 - i) * 0.5) for i in range(1, 120)]
    events.append(_step(120, elapsed_s=60.0, eta_s=200.0))
    _live_job_with_log(environment, sleepers, {"epochs": 6, "max_minutes": None}, events)
    at = _page(job=JOB)
    _ok(at)
    bar = at.get("progress")[0].proto
    assert bar.text == "step 120 of 480 · epoch 1.50 of 6 · ETA 3 min 20 s · 80 examples/s"
    assert bar.value == 25  # 120 of 480 steps


def test_a_resumed_job_with_a_time_limit_shows_the_eta_of_the_limit(environment, sleepers):
    # A 5-minute limit; the first invocation trained 100 s, this one 60 s so far: 4 minutes
    # are left, sooner than the trainer's 1,000 s, and only this invocation's time counts.
    events = [_step(i, elapsed_s=i * 10.0, eta_s=1000.0) for i in range(1, 11)]
    events.append({"event": "start", "recipe": {}, "device": "cpu", "resumed_from": 10})
    events += [_step(i, elapsed_s=100.0 + (i - 10) * 6.0, eta_s=1000.0) for i in range(11, 21)]
    _live_job_with_log(environment, sleepers, {"epochs": 6, "max_minutes": 5.0}, events)
    at = _page(job=JOB)
    _ok(at)
    bar = at.get("progress")[0].proto
    assert "step 20 of 480" in bar.text and "ETA 4 min 00 s" in bar.text, bar.text
    assert bar.value == 20  # the time share (60 s of 300 s) beats 20 of 480 steps
