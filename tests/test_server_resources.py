"""What a classroom server shares (issue #10): one read-only model, one torch thread per script
run, and small per-session state (references to cached traces, never tensors)."""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from app import state

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"


def test_torch_is_capped_at_one_thread():
    assert state.TORCH_THREADS == 1
    assert torch.get_num_threads() == state.TORCH_THREADS


def test_concurrent_traces_leave_the_shared_model_untouched():
    loaded = state.load_model("random-small")
    model = loaded.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = model.config
    assert not model.training
    results: dict[int, object] = {}

    def work(i: int) -> None:
        with torch.inference_mode():
            results[i] = model.trace(
                "[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 3 ] ]",
                seed=i % 2,
                beam_size=1 + i % 4,
                chunk_width=2 + i % 5,
                alignment=["sample", "rank", "random", "kbest"][i % 4],
            )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert model.config == config and not model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # The same request twice gives the same trace: nothing carried over between requests.
    again = model.trace("[MAX 2 9 [MIN 4 7 ] 0 [SM 1 2 3 ] ]", seed=0, beam_size=1,
                        chunk_width=2, alignment="sample")  # fmt: skip
    assert again.to_dict() == results[0].to_dict()


def _walk(obj, seen=None):
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v, seen)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            yield from _walk(v, seen)


def test_session_state_holds_no_tensors_and_shares_the_cached_trace(monkeypatch):
    monkeypatch.setenv(state.MODEL_ENV, "random-small")
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=120)
    at.run()
    expr = "[SM " + " ".join(f"[MAX {i % 10} {(i * 7) % 10} ]" for i in range(60)) + " ]"
    at.text_input(key="settings.expression").set_value(expr).run()
    assert not at.exception
    values = {k: at.session_state[k] for k in list(at.session_state)}
    assert "trace.memo" in values
    assert not any(isinstance(o, torch.Tensor) for v in values.values() for o in _walk(v))
    key, trace = at.session_state["trace.memo"]
    assert trace is state.get_trace(*key)  # the cache's object, not a copy
