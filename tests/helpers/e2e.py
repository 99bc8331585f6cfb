"""Helpers of the end-to-end tests: a tiny copy of this project as its own git repo, and the commands run in it.
The `env` and `repo` fixtures (conftest.py) build one such repo per test session; tests share it in order."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from helpers import ROOT


def sh(*cmd: str, cwd: Path, env: dict) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def project_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    # the generated outputs and dvc.lock of the real default run are not part of a tiny repo
    skip = ("metrics/", "plots/", "dvc.lock", "data/prepared", "models/", "samples/")
    return [f for f in listed if not f.startswith(skip) and (ROOT / f).is_file()]


def make_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # stages' `python` = this venv
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return env


def make_repo(repo: Path, env: dict) -> Path:
    from helpers import TINY_OVERRIDES, merged

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


def start_queue(repo: Path, env: dict, jobs: int) -> None:
    """`dvc queue start -j N`. Its workers are daemons that keep the stdout they were started with, so it is not
    captured here: a worker that lives on would make the test wait for it (their logs are in
    .dvc/tmp/exps/celery/*.out)."""
    subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)], cwd=repo, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120)


def drain_queue(repo: Path, env: dict, jobs: int, timeout: float = 900) -> str:
    """`dvc queue start -j N` and wait until nothing is queued or running; returns the last `dvc queue status`.
    The workers are ended afterwards, whatever happened (see stop_queue_workers)."""
    import time

    start_queue(repo, env, jobs)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = dvc(repo, env, "queue", "status")
            if "Queued" not in status and "Running" not in status:
                break
            if "Running" not in status and "0 active" in status:  # shut down early with tasks left: restart
                start_queue(repo, env, jobs)
            time.sleep(5)
    finally:
        stop_queue_workers(repo)  # a worker DVC leaves behind must not outlive the test
    return status


def stop_queue_workers(repo: Path) -> list[int]:
    """End the DVC queue workers still running in `repo`; returns their pids. dvc-task's idle monitor can shut the
    queue down while one worker still runs a task; that worker then never exits, and `dvc queue stop` does not
    reach it (treeverse/dvc-task#77, treeverse/dvc#10427 describe this family of races)."""
    import signal
    import time

    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == repo.resolve() and \
                    b"queue" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in found):
        time.sleep(0.5)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found


def open_in_chromium(page: Path) -> dict | None:
    """A local HTML file as headless Chromium renders it: {'text': the visible text, 'images': [(alt, natural
    width, natural height)], 'requests': URLs the page fetched beyond itself}; None when no browser can be had
    here (checks/mlflow_ui.py installs Debian's chromium and chromium-driver with apt-get when it can)."""
    import time

    sys.path.insert(0, str(ROOT / "checks"))
    import mlflow_ui

    if mlflow_ui.ensure_browser():
        return None
    port = mlflow_ui.free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        browser = mlflow_ui.wait_until("chromedriver answering", lambda: mlflow_ui.Browser(port))
        browser.open(page.resolve().as_uri())
        deadline = time.time() + 30
        while time.time() < deadline and not browser.js("return Array.from(document.images).every(i => i.complete)"):
            time.sleep(0.2)
        return {"text": browser.text(),
                "images": [tuple(i) for i in browser.js(
                    "return Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.naturalHeight])")],
                "requests": browser.js("return performance.getEntriesByType('resource').map(e => e.name)")}
    finally:
        if browser is not None:
            browser.close()
        driver.terminate()
        driver.wait(timeout=30)
