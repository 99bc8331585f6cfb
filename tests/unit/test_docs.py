"""The documentation builds as a site with no broken link, missing page or unknown anchor (`mkdocs build
--strict`), and the README and CONTRIBUTING.md, read on the repository host, link only to files that exist."""
from __future__ import annotations

import re
import subprocess
import sys

from helpers import ROOT

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def test_the_docs_build_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "evaluation.html").is_file()


def test_every_page_is_in_the_site_navigation():
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {next(iter(entry.values())) for entry in nav}
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_readme_and_contributing_link_only_to_files_that_exist():
    broken = []
    for name in ("README.md", "CONTRIBUTING.md"):
        for target in LINK.findall((ROOT / name).read_text()):
            if not target.startswith(("http://", "https://")) and not (ROOT / target).exists():
                broken.append(f"{name} -> {target}")
    assert not broken, broken


def test_the_readme_is_a_front_door():
    """At most about 250 lines: the details belong on the docs pages it links to."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_test_the_docs_name_exists():
    """A claim backed by a named test (`tests/unit/test_x.py::test_y`) names a test that is there."""
    missing = []
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        for path in set(re.findall(r"tests/[\w/]+\.py", text)):
            if not (ROOT / path).is_file():
                missing.append(f"{page.name}: {path}")
        for path, names in re.findall(r"(tests/[\w/]+\.py)((?:::\w+)+)", text):
            source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
            missing += [f"{page.name}: {path}::{n}" for n in names.split("::")[1:] if f"def {n}(" not in source]
        # `::test_b` right after a full reference names another test of the same file
        for path, rest in re.findall(r"(tests/[\w/]+\.py)::\w+`?,?\s*`::(\w+)", text):
            if f"def {rest}(" not in (ROOT / path).read_text():
                missing.append(f"{page.name}: {path}::{rest}")
    assert not missing, missing
