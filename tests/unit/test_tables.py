"""benchmarks/tables.py: the docs' measured blocks are rewritten in place, stamped with the machine, and every
block the script knows is on a docs page (and every block on a page is one the script knows)."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from helpers import ROOT


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tables"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_block_is_replaced_and_everything_around_it_kept(tables):
    text = "before\n<!-- bench:x -->\nold output\n<!-- /bench:x -->\nafter\n"
    body = tables.render("x", tables.Block(("benchmarks/x.py",), True, (("A", "1"),)), "a machine", "line 1\nline 2\n",
                         "abc1234")
    new = tables.replace_block(text, "x", body)
    assert new.startswith("before\n<!-- bench:x -->\n\n`A=1 python benchmarks/x.py` at commit abc1234 on a machine:")
    assert "```\nline 1\nline 2\n```\n\n<!-- /bench:x -->\nafter\n" in new and "old output" not in new
    assert tables.replace_block(new, "x", body) == new  # idempotent
    with pytest.raises(KeyError):
        tables.replace_block(text, "y", body)


def test_the_machine_line_names_the_flags_that_decide_bf16(tables):
    line = tables.machine()
    assert "cores" in line and "torch" in line and "flags" in line


def test_every_block_is_on_exactly_one_docs_page_and_every_page_block_is_known(tables):
    found = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        for name in tables.blocks_in(page.read_text()):
            found.setdefault(name, []).append(page.name)
    assert set(found) == set(tables.BLOCKS), (sorted(found), sorted(tables.BLOCKS))
    assert all(len(pages) == 1 for pages in found.values()), found


def test_the_commit_is_this_checkout_s(tables):
    import re

    assert re.fullmatch(r"[0-9a-f]{7}( with uncommitted changes)?", tables.commit())


def test_every_block_on_a_page_names_its_commit_machine_and_torch(tables):
    """A measured block says what code, hardware and torch printed it (the output itself follows)."""
    import re

    stamp = re.compile(r"`[^`]+` at commit [0-9a-f]{7} on .+, \d+ cores, flags .+; torch \d+\.\d+\.\d+\S*:")
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        for name in tables.blocks_in(text):
            begin, end = tables.markers(name)
            body = text[text.index(begin) + len(begin):text.index(end)].strip()
            assert stamp.match(body.splitlines()[0]), (page.name, name, body.splitlines()[0])
