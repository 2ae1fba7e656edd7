"""The Training page's job manager (app/jobs.py), time estimate and model store.

One test trains for real (D 16, 64 examples, a few dozen steps) in a worker process: start,
progress, stop (SIGTERM: a clean stop with a resume checkpoint), resume to the end; another runs
the worker's command on a 2-step job to list what it imports. The cap tests use sleeping
stand-in processes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from job_helpers import fake_active_job, kill_workers, tiny_checkpoint, tiny_settings

from app import estimate, job_worker, jobs, model_store, run_log
from app.jobs import CapacityError, JobError, JobSettings
from rir_core.presets import PRESETS, get_preset
from rir_core.train import resolve_recipe


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Iterator[Path]:
    root = tmp_path / "runs"
    monkeypatch.setenv(jobs.RUNS_ENV, str(root))
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "2")
    monkeypatch.setenv(jobs.THREADS_ENV, "1")
    yield root
    kill_workers()  # a failed test leaves no worker behind


@pytest.fixture
def sleepers():
    started = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------------
# Settings and estimate


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_settings_of_a_preset_rebuild_the_preset(name):
    s = JobSettings.from_preset(name)
    assert s.problem() is None and not s.is_custom() and s.label() == name
    model, train, data = s.overrides()
    assert resolve_recipe(name, None, model, train, data) == get_preset(name)
    assert JobSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_the_settings_defaults_are_the_classroom_preset():
    """A job record written before a field existed reads it as the classroom preset's."""
    assert JobSettings() == JobSettings.from_preset("classroom")


def test_the_classroom_preset_tells_its_story_to_the_end(runs):
    """#18 item 8: the watched tree is drawn at every epoch, and nothing but the epochs or the
    time limit ends the run (early stopping cut it off on the dev-accuracy plateau, at an epoch
    where the watched tree was wrong); its description states the epochs it runs."""
    preset = get_preset("classroom")
    assert preset.train.eval_every == 0 and preset.train.patience == 0
    assert f"{preset.train.epochs} epochs" in preset.description
    settings = JobSettings.from_preset("classroom")
    steps = -(-preset.data.train_n // preset.train.batch_size) * preset.train.epochs
    assert estimate.estimate(settings, runs).steps == steps


def test_bad_settings_get_one_sentence():
    assert "batch_size" in tiny_settings(batch_size=0).problem()
    assert "ListOps" in tiny_settings(watch="[MAX 2").problem()
    assert tiny_settings().is_custom()
    with pytest.raises(JobError, match="cannot train"):
        jobs.start_job(tiny_settings(lr=-1.0))


def test_estimate_grows_with_the_model_and_respects_limits(runs):
    small = estimate.estimate(tiny_settings(hidden_size=16, max_steps=None), runs)
    big = estimate.estimate(tiny_settings(hidden_size=128, max_steps=None), runs)
    assert 0 < small.seconds < big.seconds
    assert small.steps == 8 * 100 and small.evaluations == 800 // 25
    assert "Formula" in small.basis and "mean length" in small.basis
    capped = estimate.estimate(tiny_settings(max_steps=10), runs)
    assert capped.steps == 10 and capped.capped == "max_steps"
    paper = estimate.estimate(JobSettings.from_preset("paper"), runs)
    minutes = estimate.estimate(tiny_settings(hidden_size=128, max_minutes=0.5), runs)
    assert paper.seconds > 3600 and minutes.capped == "max_minutes"
    assert minutes.seconds == pytest.approx(30 + estimate.STARTUP_S)


def test_estimate_is_calibrated_by_earlier_runs(runs):
    run = runs / "old"
    run.mkdir(parents=True)
    recipe = get_preset("classroom").to_dict()
    m, d = recipe["model"], recipe["data"]
    predicted = estimate.step_seconds(
        estimate.mean_tokens("train", d["max_train_tokens"], d["train_n"]),
        m["hidden_size"],
        m["beam_size"],
        recipe["train"]["batch_size"],
    )
    measured_seq_per_s = 32 / (2 * predicted)  # this server is twice as slow as the formula
    lines = [{"event": "start", "recipe": recipe, "device": "cpu"}] + [
        {"event": "step", "step": i, "seq_per_s": measured_seq_per_s} for i in range(1, 30)
    ]
    (run / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert estimate.calibration(runs, "cpu") == (pytest.approx(2.0), 1)
    assert estimate.calibration(runs, "cuda") == (1.0, 0)
    assert (
        "corrected ×2.00 by the speed of 1 earlier run"
        in estimate.estimate(tiny_settings(), runs).basis
    )


# --------------------------------------------------------------------------------------------
# Jobs


def test_start_progress_stop_resume(runs):
    job = jobs.start_job(tiny_settings(max_steps=150), owner="me")
    assert job.status in ("starting", "running") and job.active
    assert json.loads((job.dir / "job.json").read_text())["settings"]["hidden_size"] == 16
    with pytest.raises(JobError, match="already has a run"):
        jobs.start_job(tiny_settings(), owner="me")

    # Progress: steps appear in the log while the worker runs.
    jobs.wait_for(job.id, lambda j: (run_log.read_log(j.dir / "log.jsonl").last_step or {}).get(
        "step", 0) >= 3, timeout_s=120)  # fmt: skip
    assert jobs.get_job(job.id).planned_steps == 150
    assert run_log.parse_steps(job.dir)[0] == 0  # the untrained model's parse, drawn at once

    jobs.stop_job(job.id)
    stopped = jobs.wait_for(job.id, lambda j: not j.active, timeout_s=120)
    assert stopped.status == "stopped", (stopped, (job.dir / "worker.log").read_text())
    assert stopped.result["status"] == "interrupted" and stopped.resumable
    at_stop = stopped.result["step"]
    assert 3 <= at_stop < 150 and (job.dir / "last" / "resume.json").is_file()

    resumed = jobs.resume_job(job.id, owner="me")
    assert resumed.active
    done = jobs.wait_for(job.id, lambda j: not j.active, timeout_s=180)
    assert done.status == "finished", (done, (job.dir / "worker.log").read_text())
    assert done.result["status"] == "max_steps" and done.result["step"] == 150
    assert not done.resumable
    log = run_log.read_log(job.dir / "log.jsonl")
    assert log.invocations == 2 and log.end["status"] == "max_steps"
    assert [s["step"] for s in log.steps] == list(range(1, 151))  # no step lost or repeated
    assert [e["step"] for e in log.evals] == [25, 50, 75, 100, 125, 150]
    steps = run_log.parse_steps(job.dir)
    assert steps[0] == 0 and {25, 50, 75, 100, 125, 150} <= set(steps)
    parse = run_log.load_parse(job.dir, 150)
    assert parse["tokens"][0] == "[MAX" and isinstance(parse["final_beams"][0]["tree"], list)
    assert job.checkpoint == job.dir / "best"
    with pytest.raises(JobError, match="nothing to resume"):
        jobs.resume_job(job.id)

    # The standard-suite evaluation, tiny: 2 examples of every split.
    ev = jobs.start_evaluation(job.id, limit=2)
    assert ev.status in ("running", "done") and ev.total == 8
    for _ in range(600):
        ev = jobs.evaluation(job.id)
        if ev.status != "running":
            break
        time.sleep(0.2)
    assert ev.status == "done", ev
    assert ev.done == 8 and ev.results["test_iid"]["n"] == 2


def test_the_worker_process_never_imports_streamlit(runs):
    """The worker's own command (as ``jobs._spawn`` runs it) trains a 2-step job; ``-X
    importtime`` lists every module that process imported, and streamlit is none of them."""
    job_dir = runs / "20240101-000000-wwww"
    job_dir.mkdir(parents=True)
    record = {"id": job_dir.name, "status": "starting", "pid": None, "owner": None,
              "created_at": "2024-01-01T00:00:00+00:00", "invocations": [],
              "settings": tiny_settings(max_steps=2).to_dict()}  # fmt: skip
    (job_dir / "job.json").write_text(json.dumps(record))
    env = dict(os.environ, PYTHONPATH=str(jobs.REPO_ROOT), **{jobs.THREADS_ENV: "1"})
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app.job_worker", str(job_dir)],
        cwd=jobs.REPO_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = jobs.get_job(job_dir.name)
    assert job.status == "finished" and job.result["step"] == 2, job
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "imported package" not in line
    }
    # The listing is complete: it holds what the worker imports late, to train and save.
    assert {"app.jobs", "torch", "rir_core.train", "rir_core.trainer"} <= imported
    assert not [m for m in imported if m.split(".")[0] == "streamlit"]


def test_cap_counts_every_session_and_one_run_per_session(runs, sleepers, monkeypatch):
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "2")
    sleepers.append(fake_active_job(runs, "20240101-000000-aaaa", owner="alice"))
    assert [j.id for j in jobs.active_jobs()] == ["20240101-000000-aaaa"]
    with pytest.raises(JobError, match="already has a run in progress"):
        jobs.start_job(tiny_settings(), owner="alice")
    sleepers.append(fake_active_job(runs, "20240101-000000-bbbb", owner="bob"))
    with pytest.raises(CapacityError, match=r"already running 2 training job\(s\).*RIR_MAX_JOBS=2"):
        jobs.start_job(tiny_settings(), owner="carol")
    assert len(list(runs.iterdir())) == 2 + 1  # the two jobs and the lock file: nothing created
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "0")
    with pytest.raises(CapacityError, match="switched off"):
        jobs.start_job(tiny_settings(), owner="carol")


def test_a_vanished_worker_makes_a_failed_job(runs, sleepers):
    sleeper = fake_active_job(runs, "20240101-000000-cccc")
    sleeper.kill()
    sleeper.wait()
    job = jobs.get_job("20240101-000000-cccc")
    assert job.status == "failed" and "ended unexpectedly" in job.error and not job.active
    jobs._update(job.dir, status="stopping")  # killed by Stop before its signal handler was up
    job = jobs.get_job("20240101-000000-cccc")
    assert job.status == "stopped" and not job.resumable
    # A live process that is not this job's worker (a reused pid) does not count either.
    (runs / "other").mkdir()
    record = json.loads((runs / "20240101-000000-cccc" / "job.json").read_text())
    record.update(status="running", pid=__import__("os").getpid())
    (runs / "other" / "job.json").write_text(json.dumps(record))
    assert jobs.get_job("other").status == "failed"


def test_runs_are_listed_from_disk_including_command_line_runs(runs):
    (runs / "cli-run").mkdir(parents=True)
    (runs / "cli-run" / "config.json").write_text("{}")
    (runs / "cli-run" / "log.jsonl").write_text(
        json.dumps({"event": "end", "status": "completed"}) + "\n"
    )
    (runs / "not a run").mkdir()
    jobs_found = jobs.list_jobs()
    assert [(j.id, j.status, j.external) for j in jobs_found] == [("cli-run", "finished", True)]
    with pytest.raises(JobError):
        jobs.stop_job("cli-run")


@pytest.mark.parametrize("bad", ["../etc", "/etc", "a/b", "", "uploads", ".hidden", "x" * 200])
def test_job_ids_stay_inside_the_runs_folder(runs, bad):
    assert jobs.job_dir_for(bad) is None and jobs.get_job(bad) is None
    with pytest.raises(KeyError):
        model_store.resolve(f"run:{bad}")


def test_log_reader_reads_only_complete_lines_and_appends(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"event": "start"}\n{"event": "step", "step": 1, "loss": 2.0}\n{"event": "st')
    log = run_log.read_log(path)
    assert log.invocations == 1 and [s["step"] for s in log.steps] == [1]
    with open(path, "a") as handle:
        handle.write('ep", "step": 2, "loss": 1.5}\n{"event": "end", "status": "completed"}\n')
    log = run_log.read_log(path)
    assert [s["step"] for s in log.steps] == [1, 2] and log.end["status"] == "completed"


# --------------------------------------------------------------------------------------------
# Model store: picker options, downloads, uploads


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_upload_of_a_good_checkpoint_zip_and_pair(runs, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    data = model_store.zip_checkpoint(ckpt)
    option = model_store.import_upload([("my model.zip", data)])
    assert option.key.startswith("upload:my-model-") and model_store.resolve(option.key) == (
        option.path
    )
    pair = [(n, (ckpt / n).read_bytes()) for n in ("model.safetensors", "model.json")]
    again = model_store.import_upload(pair)
    assert again.path.parent == runs / "uploads"
    keys = [o.key for o in model_store.options("Default")]
    assert keys[0] == "" and option.key in keys and again.key in keys


@pytest.mark.parametrize(
    "files, message",
    [
        ([("model.pt", pickle.dumps({"w": 1}))], "PyTorch pickle file"),
        ([("model.zip", b"not a zip")], "not a valid zip archive"),
        ([("evil.zip", None)], "outside its folder"),
        ([("a.json", b"{}"), ("b.txt", b"")], "exactly two files"),
        ([("model.safetensors", pickle.dumps([1])), ("model.json", None)], "never unpickled"),
        ([("model.safetensors", None), ("model.json", b"{not json")], "not valid JSON"),
    ],
)
def test_bad_uploads_get_one_sentence(runs, tmp_path, files, message):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    real = {n: (ckpt / n).read_bytes() for n in ("model.safetensors", "model.json")}
    evil = _zip({"../../model.safetensors": real["model.safetensors"], "model.json": b"{}"})
    files = [(n, evil if n == "evil.zip" else (real.get(n) if d is None else d)) for n, d in files]
    with pytest.raises(model_store.UploadError, match=message) as caught:
        model_store.import_upload(files)
    text = str(caught.value)
    assert "\n" not in text and str(runs) not in text and "Traceback" not in text
    assert not any(p for p in (runs / "uploads").glob("*") if p.is_dir())  # nothing kept


def test_upload_size_limit(runs, monkeypatch):
    monkeypatch.setenv(model_store.UPLOAD_MAX_ENV, "1")
    with pytest.raises(model_store.UploadError, match="more than the 1 MB limit"):
        model_store.import_upload([("big.zip", b"\0" * (2**20 + 1))])
    bomb = _zip({"m/model.safetensors": b"\0" * (3 * 2**20), "m/model.json": b"{}"})
    assert len(bomb) < 2**20
    with pytest.raises(model_store.UploadError, match="unpacks to 3 MB"):
        model_store.import_upload([("bomb.zip", bomb)])


def test_recording_a_parse_changes_nothing_in_the_run(tmp_path):
    """The worker draws the parse mid-training: the model must stay in training mode and the
    global RNG (dropout) untouched, or a resumed run would differ from a straight one."""
    import torch

    from rir_core.model import build_model

    model = build_model(hidden_size=16, scorer_slice=8, scorer_hidden=8).train()
    before = torch.get_rng_state()
    job_worker.write_parse(tmp_path, model, jobs.WATCH_EXPRESSION, 7, 0.5)
    assert model.training and torch.equal(before, torch.get_rng_state())
    record = run_log.load_parse(tmp_path, 7)
    assert record["step"] == 7 and record["dev_accuracy"] == 0.5
    assert record["tokens"] == jobs.WATCH_EXPRESSION.split() and run_log.parse_steps(tmp_path) == [
        7
    ]


def test_the_estimate_basis_is_whole_sentences_before_the_split_exists(runs, monkeypatch):
    """#18 item 9: with no training split on disk yet the basis read "Formula from hidden size,
    beam, batch and the training split is generated on first use..." (a broken sentence)."""
    monkeypatch.setattr(estimate, "mean_tokens", lambda *args: None)
    basis = estimate.estimate(tiny_settings(), runs).basis
    assert basis.startswith(
        "Formula from hidden size, beam, batch and the standard split's mean length (22 tokens), "
        "timed on "
    ), basis
    assert basis.endswith(
        ". The training split is generated on first use, which adds a few minutes."
    )


def test_a_finished_worker_is_reaped_without_anyone_asking():
    """#18 item 9: finished training workers stayed zombies until the server exited, unless a
    page happened to poll them. A child the app starts is reaped as soon as it ends."""
    child = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.DEVNULL)
    jobs._track(child)
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 20
    state = "?"
    while time.monotonic() < deadline:
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            break  # reaped: the pid is gone
        time.sleep(0.1)
    assert not stat.exists(), f"child {child.pid} is still there, state {state}"
    assert child.returncode == 0
    jobs._CHILDREN.pop(child.pid, None)
