"""Team mode against real servers on 127.0.0.1 (PostgreSQL, SeaweedFS S3, `mlflow server` with basic auth),
started once for this module by `ganpipe team up` on a temporary data folder and stopped at its end."""
from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
import yaml
from conftest import ROOT, TINY_OVERRIDES, merged

from ganpipe.team import servers, stack

pytestmark = pytest.mark.slow


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


@pytest.fixture(scope="module")
def team():
    # not under pytest's tmp folder: that one is closed to other users, and as root PostgreSQL runs as another
    base = Path(tempfile.mkdtemp(prefix="ganpipe-team-", dir="/tmp"))
    base.chmod(0o711)
    root = base / "stack"
    up = ganpipe("team", "up", str(root), "--port", str(free_base()))
    try:
        assert up.returncode == 0, up.stderr
        yield root, up.stdout
    finally:
        ganpipe("team", "down", str(root))
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with prepared tiny data where the train stage runs."""
    root = tmp_path_factory.mktemp("teamwork")
    params = merged(merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_OVERRIDES),
                    {"data": {"dataset": "synthetic", "max_images": 200}, "train": {"epochs": 2, "threads": 1}})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py")], cwd=root, check=True, capture_output=True)
    return root


def client_env(team) -> dict:
    root, _ = team
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, **stack.client_env(*stack.load(root)), "PYTHONPATH": str(ROOT / "src")}


def train(work, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages" / "train.py")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)


def test_up_prints_the_three_lines_and_keeps_credentials_private(team):
    root, out = team
    lines = [line for line in out.splitlines() if line.startswith("export ")]
    assert [line.split("=")[0] for line in lines] == ["export MLFLOW_TRACKING_URI", "export MLFLOW_TRACKING_USERNAME",
                                                       "export MLFLOW_TRACKING_PASSWORD"]
    assert stat.S_IMODE((root / "credentials.env").stat().st_mode) == 0o600
    status = ganpipe("team", "status", str(root))
    assert status.returncode == 0 and "mlflow: up" in status.stdout and "s3: up" in status.stdout
    stack_, _ = stack.load(root)
    assert stack_.host == "127.0.0.1"
    # secrets stay off command lines, where `ps` shows them to every user
    for pidfile in (root / "run").glob("*.pid"):
        cmdline = open(f"/proc/{pidfile.read_text()}/cmdline").read()
        creds = stack.read_env(root / "credentials.env")
        assert not any(secret in cmdline for key, secret in creds.items() if "PASSWORD" in key or "SECRET" in key)


def test_training_lands_on_the_server_with_artifacts_in_the_bucket(team, work):
    env = client_env(team)
    done = train(work, env)
    assert done.returncode == 0, done.stderr[-2000:]
    from mlflow.tracking import MlflowClient

    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
    try:
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        [run] = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
        assert run.info.status == "FINISHED" and run.data.params["train.epochs"] == "2"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/d")] == [1, 2]
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k, None)
    s3 = stack._s3_client(*stack.load(team[0]))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.BUCKET).get("Contents", [])]
    assert any(run.info.run_id in k and k.endswith(".png") for k in keys), keys  # the per-epoch grids
    assert any(k.endswith("generator.safetensors") for k in keys), keys  # the logged model's weights


@pytest.mark.parametrize("change, message", [
    ({"MLFLOW_TRACKING_PASSWORD": "wrong"}, "refused the login (401 Unauthorized: user 'ganpipe'"),
    ({"MLFLOW_TRACKING_PASSWORD": None, "MLFLOW_TRACKING_USERNAME": None}, "401 Unauthorized: requests without"),
])
def test_bad_credentials_stop_before_training_with_one_line(team, work, change, message):
    env = {**client_env(team), **change}
    env = {k: v for k, v in env.items() if v is not None}
    (work / "models" / "generator.safetensors").unlink(missing_ok=True)
    done = train(work, env)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (work / "models" / "generator.safetensors").exists()


def test_a_user_without_write_permission_is_refused_before_training(team, work):
    root, _ = team
    stack_, creds = stack.load(root)
    admin = ("admin", creds["GANPIPE_TEAM_ADMIN_PASSWORD"])
    made = requests.post(f"{stack_.tracking_uri}/api/2.0/mlflow/users/create",
                         json={"username": "reader", "password": "Reader-pass-1234"}, auth=admin, timeout=10)
    assert made.ok, made.text
    # the experiment exists (made by the previous test's user); the default permission of others is READ
    env = {**client_env(team), "MLFLOW_TRACKING_USERNAME": "reader", "MLFLOW_TRACKING_PASSWORD": "Reader-pass-1234"}
    (work / "models" / "generator.safetensors").unlink(missing_ok=True)
    done = train(work, env)
    assert done.returncode == 1 and "user 'reader' write here (403 Permission denied)" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (work / "models" / "generator.safetensors").exists()


def test_s3_down_during_a_training_stops_it_with_one_line(team, work):
    """The artifact store gone under a running server: the first upload fails, the stage stops with one line
    (no traceback), the run is FAILED; `team up` brings the S3 server back."""
    root, _ = team
    assert servers.stop(root / "run" / "s3.pid")
    try:
        done = train(work, client_env(team))
    finally:
        assert ganpipe("team", "up", str(root)).returncode == 0
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "error: cannot use the MLflow tracking store" in done.stderr


def test_down_then_up_keeps_runs_and_artifacts(team):
    root, _ = team
    down = ganpipe("team", "down", str(root))
    assert down.returncode == 0 and "stopped MLflow, S3, PostgreSQL" in down.stdout, down.stdout + down.stderr
    assert ganpipe("team", "status", str(root)).returncode == 3
    again = ganpipe("team", "up", str(root))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == team[1].splitlines()[-1]  # the same password: credentials are kept
    stack_, creds = stack.load(root)
    auth = (creds["GANPIPE_TEAM_USER"], creds["GANPIPE_TEAM_USER_PASSWORD"])
    found = requests.post(f"{stack_.tracking_uri}/api/2.0/mlflow/runs/search", json={"experiment_ids": ["1"]},
                          auth=auth, timeout=30).json()
    [run] = [r for r in found["runs"] if r["info"]["status"] == "FINISHED"]
    listed = requests.get(f"{stack_.tracking_uri}/api/2.0/mlflow/artifacts/list",
                          params={"run_id": run["info"]["run_id"], "path": "images"}, auth=auth, timeout=30).json()
    assert len([f for f in listed["files"] if f["path"].endswith(".png")]) == 3  # step 0 and 2 epochs


def test_dvc_push_from_one_clone_and_pull_in_a_fresh_one_give_the_same_bytes(team, repo, env, tmp_path):
    """Clone A (a copy of the e2e repo, its results committed) pushes to the stack's bucket; a fresh git clone of
    A, given only the S3 keys, pulls every output byte for byte and DVC finds it up to date."""
    from e2e import dvc, sh

    stack_, creds = stack.load(team[0])
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(repo, a, symlinks=True, ignore=shutil.ignore_patterns("mlruns", "mlflow.db"))
    commands = stack.dvc_remote(stack_, creds)
    for cmd in commands:
        dvc(a, env, *cmd[1:])
    sh("git", "add", "-A", cwd=a, env=env)  # the remote's URL and endpoint are shared through git; keys are not
    sh("git", "commit", "-q", "-m", "results and the team remote", cwd=a, env=env)
    assert creds["AWS_SECRET_ACCESS_KEY"] not in (a / ".dvc" / "config").read_text()
    dvc(a, env, "push")
    sh("git", "clone", "-q", str(a), str(b), cwd=tmp_path, env=env)
    for cmd in commands[2:]:  # the keys (`--local`)
        dvc(b, env, *cmd[1:])
    dvc(b, env, "pull")
    outs = ["models/generator.safetensors", "models/classifier.safetensors", "samples/samples.safetensors"]
    assert all((b / f).is_file() and (a / f).read_bytes() == (b / f).read_bytes() for f in outs)
    assert (a / "data" / "prepared").is_dir() and sorted(p.name for p in (b / "data" / "prepared").iterdir()) == \
        sorted(p.name for p in (a / "data" / "prepared").iterdir())
    assert "up to date" in dvc(b, env, "status")
