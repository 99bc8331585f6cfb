"""Team mode under faults and load, against the real servers of the session's stack: the tracking server
killed, PostgreSQL restarted, S3 down past the retry budget, and eight clients logging at once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from ganpipe.team import servers, stack

from helpers.team import ROOT, admin, assert_every_epoch_once, client_env, ganpipe, longer, running_run, train


def test_s3_down_past_the_retry_budget_fails_the_run_and_a_rerun_resumes_it(team, team_work, tmp_path):
    """The artifact store gone under a running server for longer than the client waits: one line, no traceback,
    the run FAILED with its checkpoint kept. With S3 back, the rerun resumes into the same run and ends with
    every epoch's metrics and images exactly once."""
    root, _ = team
    folder, epochs = longer(team_work, tmp_path, 12), 12
    env = {**client_env(team), "GANPIPE_TRACKING_RETRY_S": "3"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py")], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = running_run(team, 2, proc)
    assert servers.stop(root / "run" / "s3.pid")
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        assert ganpipe("team", "up", str(root)).returncode == 0
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    lines = [line for line in err.strip().splitlines() if not line.startswith("train:")]  # (the progress bar)
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the MLflow tracking store"), err
    assert "retrying for up to 3 s" in out and (folder / "checkpoints" / "train.pt").is_file(), out
    uri, auth = admin(team)
    failed = requests.get(f"{uri}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, auth=auth, timeout=30).json()
    assert failed["run"]["info"]["status"] == "FAILED"
    again = train(folder, env)
    assert again.returncode == 0 and "resuming from" in again.stdout, again.stderr[-3000:]
    assert_every_epoch_once(team, run_id, epochs)


@pytest.mark.parametrize("fault", ["mlflow server killed", "postgres restarted"])
def test_an_outage_in_mid_training_is_waited_out_and_loses_nothing(team, team_work, tmp_path, fault):
    """The tracking server killed (SIGKILL) and started again, or PostgreSQL restarted under it, while a training
    logs: the stage notes the outage once, waits, and finishes; no epoch's metrics or images are lost or doubled."""
    root, _ = team
    folder, epochs = longer(team_work, tmp_path, 12), 12
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / "train.py")], cwd=folder, env=client_env(team),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = running_run(team, 2, proc)
    if fault == "mlflow server killed":
        os.killpg(int((root / "run" / "mlflow.pid").read_text()), signal.SIGKILL)
        time.sleep(3)  # the stage is retrying meanwhile
        assert ganpipe("team", "up", str(root)).returncode == 0
    else:
        stack_, _ = stack.load(root)
        owner = servers.pg_owner()
        assert servers.pg_stop(stack_.path("pg", "data"), owner)
        time.sleep(3)
        assert ganpipe("team", "up", str(root)).returncode == 0
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "note: the MLflow store failed while logging" in out and "note: the MLflow store is back" in out, out
    assert_every_epoch_once(team, run_id, epochs)


def test_eight_clients_logging_at_once_all_land_with_every_metric_and_image(team, monkeypatch):
    """benchmarks/team_load.py's load (it also prints the latencies): 8 clients each log a run of 10 epochs
    through ganpipe's logging path at the same time; all 8 finish and the server holds every step of each."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    for key, value in stack.client_env(*stack.load(team[0])).items():
        monkeypatch.setenv(key, value)
    import team_load

    result = team_load.run_load(8, 10, "team-load-test")
    assert result["done"] == 8 and not result["errors"], result["errors"]
    for landed in result["landed"].values():
        assert landed["status"] == "FINISHED" and landed["images"] == 10
        assert all(steps == list(range(1, 11)) for steps in landed["steps"].values()), landed
    assert all(len(v) == 8 * 10 for k, v in result["latencies"].items() if k in ("metrics", "image"))
