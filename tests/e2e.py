"""Helpers of the end-to-end tests: a tiny copy of this project as its own git repo, and the commands run in it.
The `env` and `repo` fixtures (conftest.py) build one such repo per test session; tests share it in order."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def sh(*cmd: str, cwd: Path, env: dict) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def project_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    # the generated outputs and dvc.lock of the real default run are not part of a tiny repo
    skip = ("metrics/", "plots/", "dvc.lock", "data/", "models/", "samples/")
    return [f for f in listed if not f.startswith(skip) and (ROOT / f).is_file()]


def make_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # stages' `python` = this venv
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return env


def make_repo(repo: Path, env: dict) -> Path:
    from conftest import TINY_OVERRIDES, merged

    for f in project_files():
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, repo / f)
    params = merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_OVERRIDES)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "init", "-q", "-b", "main", cwd=repo, env=env)
    sh("git", "add", "-A", cwd=repo, env=env)
    sh("git", "commit", "-q", "-m", "tiny", cwd=repo, env=env)
    sh(sys.executable, "-m", "dvc", "repro", cwd=repo, env=env)
    return repo


def dvc(repo: Path, env: dict, *args: str) -> str:
    return sh(sys.executable, "-m", "dvc", *args, cwd=repo, env=env)


def ganpipe(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganpipe.cli", *args], cwd=repo, env=env, capture_output=True,
                          text=True)
