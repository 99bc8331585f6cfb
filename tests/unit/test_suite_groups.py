"""`make test` runs on two processes (tests/helpers/groups.py): a test that asks for a heavy session fixture
outside the group that shares it would build that fixture a second time in the other process (a second tiny
repo, a second team stack on other ports), so every such use must be inside its group."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, groups

FILES = sorted(groups.TESTS.rglob("test_*.py"))


def fixtures_asked(path: Path) -> set[str]:
    """The argument names of the file's tests and fixtures (what pytest hands them)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
        if node.name.startswith("test_") or fixture:
            names |= {a.arg for a in node.args.args}
    return names


def test_each_shared_fixture_is_asked_for_only_inside_a_group_that_shares_it():
    shared = set().union(*groups.SHARED.values())
    wrong = [f"{path.relative_to(groups.TESTS)} asks for {name} in group {groups.group(path)}"
             for path in FILES for name in sorted(fixtures_asked(path) & shared)
             if name not in groups.SHARED.get(groups.group(path), set())]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_fixture_asked_for_by_a_test_or_a_fixture(tmp_path):
    path = tmp_path / "test_x.py"
    path.write_text("import pytest\n@pytest.fixture(scope='module')\ndef clones(team):\n    pass\n"
                    "def test_a(repo, tmp_path):\n    pass\ndef helper(feats):\n    pass\n")
    assert fixtures_asked(path) == {"team", "repo", "tmp_path"}


def test_the_longest_groups_come_first_and_test_stage_deps_heads_the_team_group():
    ordered = sorted(FILES, key=groups.order)
    names = [groups.group(p) for p in ordered]
    first_other = next(i for i, n in enumerate(names) if n not in groups.LONGEST_FIRST)
    assert names[:first_other] == sorted(names[:first_other], key=groups.LONGEST_FIRST.index)
    assert set(names[first_other:]).isdisjoint(groups.LONGEST_FIRST)
    team = [p.relative_to(groups.TESTS).as_posix() for p, n in zip(ordered, names) if n == "team"]
    assert team[0] == "stages/test_stage_deps.py" and all(t.startswith("team/") for t in team[1:])
    assert groups.group(groups.TESTS / "unit" / "test_losses.py") == "unit/test_losses.py"


def test_a_test_id_maps_to_its_group():
    assert {groups.scope(f"tests/e2e/{f}::test_x") for f in ("test_pipeline_e2e.py", "test_tune_e2e.py")} == {"e2e"}
    assert {groups.scope("tests/team/test_team.py::t"), groups.scope("tests/stages/test_stage_deps.py::t[a::b]")} \
        == {"team"}
    assert groups.scope("tests/validation/test_inception.py::test_w") == "validation"
    assert groups.scope("tests/unit/test_losses.py::t[1]") == "unit/test_losses.py" != groups.scope(
        "tests/unit/test_metrics.py::t")


def test_on_two_processes_each_group_runs_whole_in_one():
    """The wiring itself (conftest.py's scheduler hook), on two small files: xdist's own group marks once stopped
    taking effect unnoticed."""
    files = ["tests/unit/test_tables.py", "tests/unit/test_suite_groups.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                           "no:cacheprovider", "-k", "not two_processes", *files], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    ran = re.findall(r"^\[(gw\d)\] .*PASSED (tests/\S+?)::", done.stdout, re.MULTILINE)
    workers = {f: {w for w, path in ran if path == f} for f in files}
    assert all(len(w) == 1 for w in workers.values()) and len(ran) >= 8, (workers, done.stdout[-3000:])


def test_the_two_longest_groups_are_handed_out_first_whatever_their_number_of_tests(monkeypatch):
    from collections import OrderedDict

    from xdist.scheduler import LoadScopeScheduling

    handed = []
    monkeypatch.setattr(LoadScopeScheduling, "_assign_work_unit",
                        lambda self, node: handed.append(self.workqueue.popitem(last=False)[0]))
    sched = object.__new__(groups.scheduler_class())
    # as xdist queues them: most tests first
    sched.workqueue = OrderedDict((g, {f"{g}::t{i}": False for i in range(n)})
                                  for g, n in (("unit/test_a.py", 50), ("e2e", 30), ("team", 12), ("validation", 9)))
    for _ in range(4):
        sched._assign_work_unit(None)
    assert handed == ["e2e", "team", "unit/test_a.py", "validation"]
