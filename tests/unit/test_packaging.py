"""pyproject.toml's dependencies and extras (team, test, docs) are all pinned in requirements.lock, which `make`
installs, at versions their ranges allow; the library itself never imports a test-only package."""
from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from helpers import ROOT


def _locked() -> dict[str, str]:
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return {norm(n): v for n, v in (line.split("==") for line in lines if "==" in line and not line.startswith("#"))}


def test_every_declared_dependency_is_locked_at_a_version_its_range_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    locked, problems = _locked(), []
    for text in declared:
        req = Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name not in locked:
            problems.append(f"{req.name} is not in requirements.lock")
        elif not req.specifier.contains(locked[name].split("+")[0], prereleases=True):
            problems.append(f"{req.name}=={locked[name]} is outside {req.specifier}")
    assert not problems, problems
    assert {"team", "test", "docs"} <= set(project["optional-dependencies"])


def test_the_library_does_not_import_test_only_packages():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "ganpipe").rglob("*.py")
                 if re.search(r"^\s*(import|from) (torchmetrics|pytest|prdc)\b", p.read_text(), re.M)]
    assert not offenders, offenders


def test_make_refuses_another_python_with_one_line_before_installing_anything(tmp_path):
    import shutil
    import subprocess

    for name in ("Makefile", "requirements.lock", "requirements-fid.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    fake = tmp_path / "python3.12"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.12.1"; exit 0; fi\nexit 1\n')
    fake.chmod(0o755)
    done = subprocess.run(["make", f"PYTHON={fake}", "repro"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    assert f"ganpipe needs Python 3.11; {fake} is Python 3.12.1" in done.stdout
    assert not (tmp_path / ".venv").exists()
