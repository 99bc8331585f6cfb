"""Team mode with two clones of a project: DVC push/pull through the stack's bucket, both clones training against
the one server at once, the UI check through the login, and one clone reproducing the other's run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ganpipe.team import stack

from helpers.team import ROOT


@pytest.fixture(scope="module")
def clones(team, repo, env, tmp_path_factory):
    """Clone A (a copy of the e2e repo, its results committed, the team remote in git) pushes to the stack's
    bucket; B, a fresh git clone of A given only the S3 keys, pulls. Returns (a, b, env with the client lines)."""
    from helpers.e2e import dvc, sh

    stack_, creds = stack.load(team[0])
    tmp = tmp_path_factory.mktemp("clones")
    a, b = tmp / "a", tmp / "b"
    shutil.copytree(repo, a, symlinks=True, ignore=shutil.ignore_patterns("mlruns", "mlflow.db"))
    commands = stack.dvc_remote(stack_, creds)
    for cmd in commands:
        dvc(a, env, *cmd[1:])
    sh("git", "add", "-A", cwd=a, env=env)  # the remote's URL and endpoint are shared through git; keys are not
    sh("git", "commit", "-q", "-m", "results and the team remote", cwd=a, env=env)
    assert creds["AWS_SECRET_ACCESS_KEY"] not in (a / ".dvc" / "config").read_text()
    dvc(a, env, "push")
    sh("git", "clone", "-q", str(a), str(b), cwd=tmp, env=env)
    for cmd in commands[2:]:  # the keys (`--local`)
        dvc(b, env, *cmd[1:])
    dvc(b, env, "pull")
    return a, b, {**env, **stack.client_env(stack_, creds)}


def test_dvc_push_from_one_clone_and_pull_in_a_fresh_one_give_the_same_bytes(clones):
    from helpers.e2e import dvc

    a, b, env = clones
    outs = ["models/generator.safetensors", "models/classifier.safetensors", "samples/samples.safetensors"]
    assert all((b / f).is_file() and (a / f).read_bytes() == (b / f).read_bytes() for f in outs)
    assert (a / "data" / "prepared").is_dir() and sorted(p.name for p in (b / "data" / "prepared").iterdir()) == \
        sorted(p.name for p in (a / "data" / "prepared").iterdir())
    assert "up to date" in dvc(b, env, "status")


def test_two_clones_at_once_land_every_run_and_one_reproduces_the_others(team, clones, tmp_path):
    """At the same time: clone A runs `dvc repro` (a changed seed, committed), clone B queues two experiments and
    runs them with `dvc queue start -j 2`. Every run lands on the server: params, each epoch's metrics and grids,
    the model and the scores, artifacts in the bucket. Then the UI check passes against the server with the
    login, and B reproduces A's run with `ganpipe reproduce RUN_ID`."""
    from helpers.e2e import drain_queue, dvc, sh

    a, b, env = clones
    params = yaml.safe_load((a / "params.yaml").read_text())
    params["train"]["seed"] = params["train"]["seed"] + 100
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "commit", "-q", "-am", "another seed", cwd=a, env=env)
    commit_a = sh("git", "rev-parse", "HEAD", cwd=a, env=env).strip()
    sh("git", "fetch", "-q", "origin", cwd=b, env=env)  # B can see A's commit (to reproduce it later)
    for seed in (11, 12):
        dvc(b, env, "exp", "run", "--queue", "-n", f"team-b{seed}", "-S", f"train.seed={seed}")
    repro_a = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=a, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    status = drain_queue(b, env, 2)
    out_a, _ = repro_a.communicate(timeout=900)
    assert repro_a.returncode == 0, out_a[-3000:]
    assert status.count("Success") >= 2, status

    from mlflow.tracking import MlflowClient

    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
    try:
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("ganpipe").experiment_id
        runs = {r.info.run_name: r for r in client.search_runs([experiment], "tags.`ganpipe.run_kind` = 'training'")}
        names = [f"repro-{commit_a[:7]}", "team-b11", "team-b12"]
        epochs = params["train"]["epochs"]
        s3 = stack._s3_client(*stack.load(team[0]))
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.BUCKET)
                for o in page.get("Contents", [])]
        for name in names:
            run = runs[name]
            assert run.info.status == "FINISHED" and run.data.params["train.epochs"] == str(epochs), name
            assert "eval/fid" in run.data.metrics and "eval/is" in run.data.metrics, name  # the scores landed
            assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/d")] == list(range(1, epochs + 1))
            mine = [k for k in keys if run.info.run_id in k]
            assert sum(k.endswith(".png") and "/images/" in k for k in mine) == epochs + 1, (name, mine)
            [model] = client.search_logged_models([experiment], f"source_run_id = '{run.info.run_id}'")
            where = model.artifact_location.partition(":/")[2].lstrip("/")  # mlflow-artifacts:/1/models/m-.../...
            assert any(k.startswith(where) and k.endswith("generator.safetensors") for k in keys), (name, where)
        run_a = runs[names[0]]
        assert run_a.data.tags["git.commit"] == commit_a
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k, None)

    ui = subprocess.run([sys.executable, str(ROOT / "checks" / "mlflow_ui.py"), "--server", env["MLFLOW_TRACKING_URI"],
                         "--out", str(tmp_path / "ui")], capture_output=True, text=True, timeout=900, env=env)
    if ui.returncode == 3:
        pytest.skip(f"no browser for the UI check: {ui.stderr.strip()}")
    assert ui.returncode == 0, ui.stdout + ui.stderr[-3000:]
    assert "shows all" in ui.stdout and "`samples` grid renders" in ui.stdout, ui.stdout

    again = subprocess.run([sys.executable, "-m", "ganpipe.cli", "reproduce", run_a.info.run_id], cwd=b, env=env,
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "REPRODUCED:" in again.stdout and "NOT REPRODUCED" not in again.stdout, again.stdout
