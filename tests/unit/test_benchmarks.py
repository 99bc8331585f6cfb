"""The benchmark scripts still call the library as it is: every call of a ganpipe function or class in
benchmarks/*.py passes arguments its signature accepts. (The scripts take minutes, so the suite does not run
them; a signature change in the library must not leave a docs command broken.)"""
from __future__ import annotations

import ast
import importlib
import inspect

import pytest

from helpers import ROOT

SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def _imported(tree: ast.Module) -> dict[str, object]:
    """Names bound by `from ganpipe... import name` anywhere in the file (function-level imports too)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ganpipe"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                target = getattr(module, alias.name, None)
                if target is None:  # a submodule: `from ganpipe.eval import twosets`
                    target = importlib.import_module(f"{node.module}.{alias.name}")
                found[alias.asname or alias.name] = target
    return found


def _callee(func: ast.expr, names: dict[str, object]) -> object | None:
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and inspect.ismodule(
            names.get(func.value.id)):
        return getattr(names[func.value.id], func.attr, None)
    return None


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_library_call_in_a_benchmark_fits_its_signature(script):
    tree = ast.parse(script.read_text())
    names, problems = _imported(tree), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = _callee(node.func, names)
        if target is None or not callable(target) or inspect.ismodule(target):
            continue
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):  # builtins without a signature
            continue
        params = signature.parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            continue
        allowed = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        for kw in node.keywords:
            if kw.arg is not None and kw.arg not in allowed:
                problems.append(f"line {node.lineno}: {ast.unparse(node.func)}() has no parameter {kw.arg!r}")
    assert not problems, problems


def test_the_check_would_catch_a_removed_parameter(tmp_path, monkeypatch):
    """The check itself: a call with a keyword the function lost is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from ganpipe.gan.train import train\ntrain(1, 2, 3, 4, 5, progress=False)\n")
    monkeypatch.setattr(f"{__name__}.SCRIPTS", [bad])
    with pytest.raises(AssertionError, match="no parameter 'progress'"):
        test_every_library_call_in_a_benchmark_fits_its_signature(bad)


def test_pipeline_time_runs_each_stage_after_every_stage_it_reads_from(monkeypatch):
    """benchmarks/pipeline_time.py runs `dvc repro -s STAGE` one stage at a time, so each must come after the stages
    whose outputs it reads (a fixed list once ran train before the Inception reference it reads, and failed)."""
    import os
    import sys

    import yaml

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # not left on sys.path for later tests
    import pipeline_time

    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    order = pipeline_time.stage_order(ROOT, env)
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert sorted(order) == sorted(stages)
    assert order.index("reference") < order.index("train") < order.index("sample") < order.index("evaluate")
    assert order[0] == "prepare"
