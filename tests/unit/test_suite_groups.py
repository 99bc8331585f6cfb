"""`make test` runs on two processes (tests/helpers/groups.py): a test that asks for a heavy session fixture
outside the group that shares it would build that fixture a second time in the other process (a second tiny
repo, a second team stack on other ports), so every such use must be inside its group."""
from __future__ import annotations

import ast
from pathlib import Path

from helpers import groups

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
