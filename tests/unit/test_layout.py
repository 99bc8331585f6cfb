"""The library's import graph has no circle (counting imports inside functions too), and only ganpipe.track
imports mlflow: each concern has one home and depends on others in one direction."""
from __future__ import annotations

import ast

from helpers import ROOT

SRC = ROOT / "src"


def _module(path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path) -> set[str]:
    """Every ganpipe module a file imports, anywhere in it (`from ganpipe.x import y` counts x.y when y is a
    module, else x)."""
    modules = {_module(p) for p in (SRC / "ganpipe").rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ganpipe")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ganpipe"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
    return found & modules


def graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) - {_module(p)} for p in (SRC / "ganpipe").rglob("*.py")}


def test_the_import_graph_has_no_circle():
    edges = graph()
    # a package's __init__ is imported with any of its modules: its own imports are not the module's
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not circles, circles


def test_only_the_tracking_package_imports_mlflow():
    importers = sorted(_module(p) for p in (SRC / "ganpipe").rglob("*.py")
                       if any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(
                           (a.name if isinstance(n, ast.Import) else (n.module or "")).startswith("mlflow")
                           for a in n.names) for n in ast.walk(ast.parse(p.read_text()))))
    assert importers and all(m.startswith("ganpipe.track.") for m in importers), importers
