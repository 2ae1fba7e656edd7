"""Server housekeeping: give memory back once a class has gone home (issue #10).

Streamlit keeps a closed tab's session for ``server.disconnectedSessionTTL`` seconds (30 here, see
``.streamlit/config.toml``), but its session store only drops expired sessions when it is next
written to, that is when the next tab connects. The trace cache (``state.get_trace``, up to a
dozen traces of up to ~30 MB each) is likewise bounded but never emptied. After a lesson the server
would sit on a few hundred MB until the next one. A daemon thread, started once per server
process by the router, runs :func:`sweep` every :data:`INTERVAL_S` seconds:

1. drop the disconnected sessions whose time is up (the session store's own ``expire()``);
2. when no session is left at all (no open tab, none waiting to reconnect), clear the per-input
   caches (traces and ``st.cache_data``; the loaded models stay), collect garbage once and hand
   the freed heap back to the operating system (glibc's ``malloc_trim``; skipped elsewhere).

Step 2 runs once per quiet spell, never while anyone is connected, so it costs no student a
redraw. Reaching into the session manager uses two private attributes of Streamlit's runtime
(``_session_mgr``, ``_session_storage``); where a future Streamlit renames them, the sweep only
skips step 1 (sessions then expire when the next tab connects, as before) and still does step 2.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

INTERVAL_S = 10.0

_started = threading.Lock()
_thread: threading.Thread | None = None


@dataclass
class SweepResult:
    sessions: int | None  # sessions left (active + awaiting reconnection); None: no runtime
    expired: bool  # the session store was asked to drop its expired sessions
    cleared: bool  # the per-input caches were emptied and memory handed back


def _runtime() -> Any | None:
    from streamlit.runtime import Runtime

    return Runtime.instance() if Runtime.exists() else None


def _expire_sessions(session_mgr: Any) -> bool:
    cache = getattr(getattr(session_mgr, "_session_storage", None), "_cache", None)
    expire = getattr(cache, "expire", None)
    if expire is None:
        return False
    expire()
    return True


def clear_input_caches() -> None:
    """Empty what grows with the inputs seen (traces, derived data); keep the loaded models."""
    import streamlit as st

    from app import state

    state.get_trace.clear()
    st.cache_data.clear()


def release_memory() -> None:
    """One full garbage collection, then glibc's ``malloc_trim(0)`` where there is one."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:  # not glibc: the collection above is all we can do
        pass


class Sweeper:
    """The state between sweeps: whether the caches were emptied since the last session."""

    def __init__(
        self,
        runtime: Callable[[], Any | None] = _runtime,
        clear: Callable[[], None] = clear_input_caches,
        release: Callable[[], None] = release_memory,
    ) -> None:
        self._runtime, self._clear, self._release = runtime, clear, release
        self.quiet = True  # nothing to clear before the first session

    def sweep(self) -> SweepResult:
        rt = self._runtime()
        mgr = getattr(rt, "_session_mgr", None)
        if mgr is None:
            return SweepResult(None, False, False)
        expired = _expire_sessions(mgr)
        sessions = int(mgr.num_sessions())
        if sessions:
            self.quiet = False
            return SweepResult(sessions, expired, False)
        if self.quiet:
            return SweepResult(0, expired, False)
        self._clear()
        self._release()
        self.quiet = True
        log.info("no sessions left: caches cleared and memory released")
        return SweepResult(0, expired, True)


def _loop(sweeper: Sweeper, interval_s: float) -> None:
    while True:
        threading.Event().wait(interval_s)
        try:
            sweeper.sweep()
        except Exception:  # never let housekeeping take the server down
            log.exception("housekeeping sweep failed")


def start(interval_s: float = INTERVAL_S) -> bool:
    """Start the sweeping thread once per process; True if this call started it."""
    global _thread
    with _started:
        if _thread is not None:
            return False
        _thread = threading.Thread(
            target=_loop, args=(Sweeper(), interval_s), name="rir-housekeeping", daemon=True
        )
        _thread.start()
        return True
