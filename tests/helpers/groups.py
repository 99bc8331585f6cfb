"""Which tests share a process under `make test` (pytest-xdist, `-n 2 --dist loadgroup`; conftest.py hands xdist
the scheduler below).

Tests that share a heavy session fixture run in one process, in their collected order, so each fixture is built
once: the e2e tier shares its tiny repo (`repo`); the team tier shares the team stack (`team`, `team_work`) and
builds its own repo, which test_stage_deps also copies (it runs first in that group); the validation tier shares
its Inception features (`net`, `feats`). Every other file is a group of its own, so its module fixtures are built
once too. tests/unit/test_suite_groups.py checks that no file outside these groups asks for their fixtures."""
from __future__ import annotations

from pathlib import Path

from helpers import ROOT

TESTS = ROOT / "tests"
TEAM_GROUP_FILES = ("stages/test_stage_deps.py",)  # uses `repo`: runs in the team group, which builds one anyway
SHARED = {  # group -> the session fixtures only it may use
    "e2e": {"repo"}, "team": {"repo", "team", "team_work"}, "validation": {"net", "feats"},
}
LONGEST_FIRST = ("e2e", "team")  # the two longest groups start at once, one per process


def group(path: Path) -> str:
    if not Path(path).is_relative_to(TESTS):  # a test file given from elsewhere: a group of its own
        return str(path)
    relative = Path(path).relative_to(TESTS).as_posix()
    if relative in TEAM_GROUP_FILES:
        return "team"
    tier = relative.split("/")[0]
    return tier if tier in SHARED else relative


def order(path: Path) -> tuple[int, bool]:
    """A sort key: the longest groups first (as one process runs them), and test_stage_deps at the head of its
    group (sorting is stable, so the collected order holds inside a group)."""
    name = group(path)
    first = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    return first, not any(Path(path) == TESTS / f for f in TEAM_GROUP_FILES)


def scope(nodeid: str) -> str:
    """The group of a test id ("tests/unit/test_x.py::test_y[...]", relative to the repository)."""
    return group(ROOT / nodeid.split("::", 1)[0])


def scheduler_class():
    """xdist's scope scheduler with these groups as its scopes: a scope goes whole to one process, in order."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            # xdist queues the groups by their number of tests; the longest in time go first instead, one per
            # process, so that neither is left to start last
            first_left = next((g for g in LONGEST_FIRST if g in self.workqueue), None)
            if first_left is not None:
                self.workqueue.move_to_end(first_left, last=False)
            super()._assign_work_unit(node)

    return GroupScheduling


def scheduler(config, log):
    return scheduler_class()(config, log)
