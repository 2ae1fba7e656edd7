"""The Training page in a real browser: start a tiny run, watch it progress, stop it, open the
model in the Explorer.

The run trains for real (D 16, 64 short examples, batch 8) in a worker process. This test
starts its own server, so that runs go to a temporary folder (RIR_RUNS_DIR) and not to runs/.
Screenshots land in tests/_artifacts/training-*.png.
"""

from __future__ import annotations

import re
import time

import pytest
from browser import StreamlitServer, assert_no_exception, open_app, wait_for_app_idle

from app import jobs, run_log

# Custom settings typed into the page: label -> value.
TINY = {
    "Hidden size D": "16",
    "Beam size K": "2",
    "Batch size": "8",
    "Epochs": "200",
    "Training examples": "64",
    "Dev examples": "16",
    "Max training length": "20",
    "Time limit (min)": "0",
    "Evaluate every (steps)": "50",
    "Early stopping": "0",  # 16 dev examples plateau fast: the test must stop the run itself
}


@pytest.fixture
def training_server(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("RIR_APP_MODEL", "random-small")
    monkeypatch.setenv(jobs.RUNS_ENV, str(runs))
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "1")
    monkeypatch.setenv(jobs.THREADS_ENV, "1")
    server = StreamlitServer(log_path=tmp_path / "server.log")
    server.start()
    try:
        yield server.url, runs
    finally:
        for job in jobs.active_jobs(runs):  # never leave a worker behind
            jobs.stop_job(job.id, runs)
        server.stop()
        deadline = time.monotonic() + 30
        while jobs.active_jobs(runs) and time.monotonic() < deadline:
            time.sleep(0.5)


def _shot(page, name: str) -> None:
    """The whole page: grow the viewport to the content's height first (Streamlit scrolls
    inside its main area)."""
    from browser import save_screenshot

    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 900), 6000)})
    page.wait_for_timeout(800)
    save_screenshot(page, name)
    page.set_viewport_size(size)


def _set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_app_idle(page)


def _step(page) -> int:
    text = page.get_by_test_id("stProgress").inner_text()
    found = re.search(r"step ([\d,]+)", text)
    return int(found.group(1).replace(",", "")) if found else 0


def _wait_for_step(page, at_least: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.get_by_test_id("stProgress").count():
            step = _step(page)
            if step >= at_least:
                return step
        page.wait_for_timeout(200)
    raise AssertionError(f"the progress bar did not reach step {at_least} in {timeout_s} s")


@pytest.mark.browser
def test_train_watch_stop_and_explore(page, training_server):
    from playwright.sync_api import expect

    url, runs = training_server
    open_app(page, url, "training")
    expect(page.get_by_role("heading", name="Training")).to_be_visible()
    for label, value in TINY.items():
        _set_number(page, label, value)
    expect(page.get_by_text("Custom settings, based on the classroom preset.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Estimated time: about"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"1,600 steps"))).to_be_visible()  # 8 batches x 200
    assert_no_exception(page)
    _shot(page, "training-settings")

    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run \d{8}-\d{6}-"))).to_be_visible()
    job_id = re.search(r"job=([\w.-]+)", page.url).group(1)
    assert (runs / job_id / "job.json").is_file()

    first = _wait_for_step(page, 1)
    later = _wait_for_step(page, first + 10)  # the live view advances on its own
    assert later > first
    expect(page.get_by_text("How the model parses this expression now")).to_be_visible()
    expect(page.get_by_text(re.compile(r"This session's run .* is in progress"))).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    # Leaving the page does not stop the run; coming back (the sidebar link drops ?job=) shows it.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Guide").click()
    wait_for_app_idle(page)
    away = run_log.read_log(runs / job_id / "log.jsonl").last_step["step"]
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Training").click()
    expect(page.get_by_role("heading", name=f"Run {job_id}")).to_be_visible()
    assert f"job={job_id}" in page.url
    assert _wait_for_step(page, max(away, 55)) >= away  # an evaluation was drawn by then
    # The parse follows the newest evaluation (not the untrained model's, step 0).
    expect(page.get_by_text(re.compile(r"after step \d+ · dev accuracy"))).to_be_visible()
    assert_no_exception(page)
    _shot(page, "training-running")

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_text("stopped", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    job = jobs.get_job(job_id, runs)
    assert job.status == "stopped" and (runs / job_id / "last" / "resume.json").is_file()
    wait_for_app_idle(page)
    assert_no_exception(page)
    _shot(page, "training-stopped")

    page.get_by_role("button", name="Open in the Explorer").click()
    page.wait_for_url(re.compile(rf"model=run(%3A|:){job_id}"))  # the link keeps the model
    wait_for_app_idle(page)
    expect(page.get_by_role("heading", name="RIR Explorer")).to_be_visible()
    # The model panel names the run, not its folder on the server (#18 item 9).
    expect(page.get_by_text(re.compile(rf"from run {job_id} \(best\)"))).to_be_visible()
    assert_no_exception(page)
    _shot(page, "training-explorer")


@pytest.mark.browser
def test_an_upload_of_the_wrong_type_says_why_in_a_sentence(page, streamlit_app, tmp_path):
    """#18 item 9: a file of the wrong type showed only a red chip, its reason on hover. It is
    now sent to the server, which answers in one sentence on the page."""
    from playwright.sync_api import expect

    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04not really")
    open_app(page, streamlit_app, "training")
    page.get_by_role("tab", name="Upload a checkpoint").click()
    box = page.get_by_test_id("stFileUploaderDropzoneInput")
    box.set_input_files(str(notes))
    wait_for_app_idle(page)
    expect(page.get_by_text("Upload one .zip, or exactly two files")).to_be_visible()
    expect(page.get_by_text("(got notes.txt)")).to_be_visible()
    open_app(page, streamlit_app, "training")  # a fresh uploader
    page.get_by_role("tab", name="Upload a checkpoint").click()
    box.set_input_files(str(pickle))
    wait_for_app_idle(page)
    expect(page.get_by_text("model.pt is a PyTorch pickle file")).to_be_visible()
    assert_no_exception(page)


@pytest.mark.browser
def test_teacher_mode_training_form_has_no_holes(page, streamlit_app):
    """#18 item 6: teacher mode hid single fields of the Training form and left empty cells in
    its rows. The run-keeping fields are one block now, hidden whole, heading and all."""
    from browser import save_screenshot
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, streamlit_app, "training?teacher=1")
    assert_no_exception(page)
    expect(page.get_by_label("Epochs", exact=True)).to_be_visible()
    expect(page.get_by_text("Run keeping")).to_be_hidden()
    for label in ("Seed", "Batch size", "Time limit (min)", "Early stopping"):
        expect(page.get_by_label(label, exact=True)).to_be_hidden()
    empty = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stHorizontalBlock"]')]
            .filter((row) => row.offsetParent !== null)
            .flatMap((row) => [...row.querySelectorAll(':scope > [data-testid="stColumn"]')])
            .filter((col) => col.querySelector('[data-testid="stElementContainer"]') !== null)
            .filter((col) => col.getBoundingClientRect().height < 4).length"""
    )
    assert empty == 0
    page.get_by_label("Epochs", exact=True).scroll_into_view_if_needed()
    save_screenshot(page, "training-teacher-720p", full_page=False)
    # Without teacher mode the block is there.
    open_app(page, streamlit_app, "training?teacher=0")
    expect(page.get_by_text("Run keeping")).to_be_visible()
    expect(page.get_by_label("Seed", exact=True)).to_be_visible()


@pytest.fixture
def one_mb_server(tmp_path, monkeypatch):
    """The app with uploads limited to 1 MB, so that a 'too large' file is small to make."""
    monkeypatch.setenv("RIR_APP_MODEL", "random-small")
    monkeypatch.setenv(jobs.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv("RIR_UPLOAD_MAX_MB", "1")
    with StreamlitServer(log_path=tmp_path / "server.log") as server:
        yield server.url


@pytest.mark.browser
def test_an_upload_too_large_says_why_in_a_sentence(page, one_mb_server, tmp_path):
    """#18 item 9: a file over the upload limit never reaches the server; the browser showed
    only a red chip, its reason on hover. The page now says under the uploader what is wrong."""
    from playwright.sync_api import expect

    big = tmp_path / "big.zip"
    big.write_bytes(b"\0" * 3_500_000)  # 3.5 MB as the browser counts (3.3 MiB)
    small = tmp_path / "small.zip"
    small.write_bytes(b"not a zip")
    open_app(page, one_mb_server, "training")
    page.get_by_role("tab", name="Upload a checkpoint").click()
    box = page.get_by_test_id("stFileUploaderDropzoneInput")
    box.set_input_files(str(big))
    wait_for_app_idle(page)
    notice = page.locator(".rir-refused")
    expect(notice).to_have_text(
        "big.zip is 3.5 MB, more than the 1 MB limit, so the browser did not send it."
    )
    assert notice.is_visible() and notice.bounding_box()["height"] > 20
    # Adding a file under the limit: the server answers that one, the notice stays for big.zip.
    box.set_input_files(str(small))
    wait_for_app_idle(page)
    expect(page.get_by_text("small.zip is not a valid zip archive.")).to_be_visible()
    expect(notice).to_have_text(re.compile(r"^big\.zip is 3\.5 MB[^.]*\.$"))  # one sentence
    # Removing the refused file takes its sentence away.
    page.get_by_role("button", name="Remove big.zip").click()
    wait_for_app_idle(page)
    expect(notice).to_have_text("")
    expect(notice).to_be_hidden()
    assert_no_exception(page)
