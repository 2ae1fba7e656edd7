"""Housekeeping (app/housekeeping.py): expired sessions are dropped and, once no session is left,
the per-input caches are emptied exactly once per quiet spell."""

from __future__ import annotations

import threading

from app import housekeeping


class FakeStore:
    def __init__(self) -> None:
        self.expired = 0

    def expire(self) -> None:
        self.expired += 1


class FakeManager:
    def __init__(self, sessions: int) -> None:
        self.sessions = sessions
        self._session_storage = type("Storage", (), {})()
        self._session_storage._cache = FakeStore()

    def num_sessions(self) -> int:
        return self.sessions


class FakeRuntime:
    def __init__(self, sessions: int) -> None:
        self._session_mgr = FakeManager(sessions)


def _sweeper(runtime):
    calls = {"clear": 0, "release": 0}
    sweeper = housekeeping.Sweeper(
        runtime=lambda: runtime,
        clear=lambda: calls.__setitem__("clear", calls["clear"] + 1),
        release=lambda: calls.__setitem__("release", calls["release"] + 1),
    )
    return sweeper, calls


def test_no_runtime_does_nothing():
    sweeper, calls = _sweeper(None)
    assert sweeper.sweep() == housekeeping.SweepResult(None, False, False)
    assert calls == {"clear": 0, "release": 0}


def test_caches_are_cleared_once_after_the_last_session_goes():
    rt = FakeRuntime(sessions=0)
    sweeper, calls = _sweeper(rt)
    assert not sweeper.sweep().cleared  # a fresh server: nothing to clear yet
    rt._session_mgr.sessions = 3
    result = sweeper.sweep()
    assert result.sessions == 3 and result.expired and not result.cleared
    assert calls["clear"] == 0  # never while someone is connected
    rt._session_mgr.sessions = 0
    assert sweeper.sweep().cleared
    assert calls == {"clear": 1, "release": 1}
    assert not sweeper.sweep().cleared  # once per quiet spell
    assert calls == {"clear": 1, "release": 1}
    assert rt._session_mgr._session_storage._cache.expired == 4  # expired at every sweep


def test_a_runtime_without_the_private_store_still_clears():
    rt = FakeRuntime(sessions=1)
    del rt._session_mgr._session_storage
    sweeper, calls = _sweeper(rt)
    assert not sweeper.sweep().expired
    rt._session_mgr.sessions = 0
    assert sweeper.sweep().cleared and calls["clear"] == 1


def test_the_real_clear_empties_the_trace_cache(monkeypatch):
    from app import state

    state.get_trace.clear()
    monkeypatch.setenv(state.MODEL_ENV, "random-small")
    loaded = state.load_model("random-small")
    before = state.TRACE_RUNS["count"]
    state.get_trace(loaded.model_id, "[MAX 1 2 ]", 0, 2, 30, "sample")
    state.get_trace(loaded.model_id, "[MAX 1 2 ]", 0, 2, 30, "sample")
    assert state.TRACE_RUNS["count"] == before + 1  # cached
    housekeeping.clear_input_caches()
    housekeeping.release_memory()
    state.get_trace(loaded.model_id, "[MAX 1 2 ]", 0, 2, 30, "sample")
    assert state.TRACE_RUNS["count"] == before + 2  # the cache was emptied


def test_start_starts_one_thread_per_process(monkeypatch):
    monkeypatch.setattr(housekeeping, "_thread", None)
    started = []
    monkeypatch.setattr(
        threading.Thread, "start", lambda self: started.append(self.name), raising=True
    )
    assert housekeeping.start()
    assert not housekeeping.start()
    assert started == ["rir-housekeeping"]
