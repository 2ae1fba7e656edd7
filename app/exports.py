"""Downloads of the app: a trace as JSON and file names that say what is inside.

Tree exports (Graphviz DOT, GraphML) live with the tree graphs in :mod:`app.trees`. Nothing here
imports streamlit; the pages hand these functions to ``st.download_button`` as callables, so a
file is only built when someone clicks.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    """A copy of plain JSON-like data with NaN and infinities replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def trace_json(trace: dict[str, Any]) -> str:
    """The trace as strict JSON (the keys of ``Trace.to_dict()``; see ``rir_core/trace/``)."""
    try:
        return json.dumps(trace, allow_nan=False)
    except ValueError:  # a non-finite score somewhere: strict JSON has no such numbers
        return json.dumps(_finite(trace), allow_nan=False)


def file_stem(trace: dict[str, Any]) -> str:
    """``rir-trace-101tok-k7-w30-sample-seed0``: the settings that produced the trace."""
    s = trace["settings"]
    width = f"-w{s['chunk_width']}" if s.get("chunk_width") else ""
    return (
        f"rir-trace-{len(trace['tokens'])}tok-k{s['beam_size']}{width}-{s['alignment']}"
        f"-seed{s['seed']}"
    )
