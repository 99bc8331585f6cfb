"""Helpers of the team-mode tests (test_team*.py): the stack's commands, a client's environment, a training run
against the stack, and what a run on the server holds. The stack itself is one per session (conftest.py)."""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from ganpipe.team import servers, stack

from helpers import ROOT


def free_base() -> int:
    """A first port with its 6 ports (and SeaweedFS's gRPC ports, +10000) free."""
    for _ in range(50):
        base = random.randrange(30000, 38000, 10)
        if not any(servers.port_open("127.0.0.1", p) for p in [*range(base, base + 6), *range(base + 10001, base + 10006)]):
            return base
    raise RuntimeError("no free ports")


def ganpipe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganpipe.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def client_env(team) -> dict:
    root, _ = team
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, **stack.client_env(*stack.load(root)), "PYTHONPATH": str(ROOT / "src")}


def train(work, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages" / "train.py")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)


def longer(work: Path, tmp: Path, epochs: int) -> Path:
    """A copy of the work folder whose training runs `epochs` epochs, checkpointing each (a fault can land in the
    middle of it)."""
    root = tmp / f"work-{epochs}"
    # the classifier stays (the score during training compares with it); the generators and metrics go
    shutil.copytree(work, root, ignore=shutil.ignore_patterns("generator*.safetensors", "metrics", "checkpoints"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(epochs=epochs, checkpoint_every_s=0, grid_every_s=0)  # every epoch: the test needs it
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def admin(team) -> tuple[str, tuple[str, str]]:
    stack_, creds = stack.load(team[0])
    return stack_.tracking_uri, ("admin", creds["GANPIPE_TEAM_ADMIN_PASSWORD"])


def running_run(team, min_step: int, proc: subprocess.Popen) -> str:
    """The id of the RUNNING run once it has logged the metrics of `min_step` (the training is still going)."""
    uri, auth = admin(team)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        found = requests.post(f"{uri}/api/2.0/mlflow/runs/search", json={
            "experiment_ids": ["1"], "filter": "attributes.status = 'RUNNING'"}, auth=auth, timeout=30).json()
        for run in found.get("runs", []):
            steps = [m for m in run["data"].get("metrics", []) if m["key"] == "loss/d" and m["step"] >= min_step]
            if steps:
                return run["info"]["run_id"]
        time.sleep(0.2)
    raise AssertionError(f"no running run reached step {min_step}: {proc.communicate()}")


def assert_every_epoch_once(team, run_id: str, epochs: int) -> None:
    """Each epoch's metrics once, and each step's image grid once with its thumbnail (step 0: before training)."""
    uri, auth = admin(team)
    run = requests.get(f"{uri}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, auth=auth, timeout=30).json()
    assert run["run"]["info"]["status"] == "FINISHED"
    for key in ("loss/d", "loss/g", "d/real", "d/fake"):
        history = requests.get(f"{uri}/api/2.0/mlflow/metrics/get-history", params={
            "run_id": run_id, "metric_key": key, "max_results": 10000}, auth=auth, timeout=30).json()["metrics"]
        assert sorted(m["step"] for m in history) == list(range(1, epochs + 1)), (key, history)
    listed = requests.get(f"{uri}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "images"},
                          auth=auth, timeout=30).json()["files"]
    names = [f["path"].rpartition("/")[2] for f in listed]
    pngs = sorted(int(n.split("+")[2]) for n in names if n.endswith(".png"))
    webps = sorted(int(n.split("+")[2]) for n in names if n.endswith("+compressed.webp"))
    assert pngs == webps == list(range(0, epochs + 1)), names


def models(client, run) -> list[tuple[str, str, list[str]]]:
    """(name, status, files) of each logged model of a run."""
    found = client.search_logged_models([run.info.experiment_id], f"source_run_id = '{run.info.run_id}'")
    return sorted((m.name, str(m.status), sorted(f.path for f in client.list_logged_model_artifacts(m.model_id)))
                  for m in found)
