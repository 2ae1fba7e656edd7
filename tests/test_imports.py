"""The core's modules import each other without cycles (issue #17).

A cycle (model -> trace -> checkpoint -> model, once) works only because some imports sit inside
functions; it makes the layering unreadable and breaks as soon as one of them moves to the top
of its file. Every ``rir_core`` import is counted, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "rir_core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _known(name: str, modules: set[str]) -> str:
    """The longest known module that ``name`` is or lies in (``rir_core.trace.Trace`` -> trace)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def import_graph() -> nx.DiGraph:
    files = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(p) for p in files}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for path in files:
        here = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from rir_core import x` names the submodule x where there is one.
                targets = [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                if target.split(".")[0] == "rir_core":
                    dest = _known(target, modules)
                    if dest != here:
                        graph.add_edge(here, dest)
    return graph


def test_the_graph_sees_the_imports_it_must() -> None:
    graph = import_graph()
    assert graph.has_edge("rir_core.checkpoint", "rir_core.model")  # inside load_checkpoint
    assert graph.has_edge("rir_core.model", "rir_core.trace")  # inside ListOpsModel.trace
    assert graph.has_edge("rir_core.trace.__main__", "rir_core.checkpoint")


def test_the_core_imports_no_cycle() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in cycles)


def test_the_trace_package_stays_below_the_model() -> None:
    """Tracing is imported by the model; loading checkpoints belongs to the CLI above it."""
    below = nx.descendants(import_graph(), "rir_core.trace")
    assert {"rir_core.model", "rir_core.checkpoint", "rir_core.pretrained"}.isdisjoint(below)
