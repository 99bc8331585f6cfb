"""Team mode against real servers on 127.0.0.1 (PostgreSQL, SeaweedFS S3, `mlflow server` with basic auth),
started once for this module by `ganpipe team up` on a temporary data folder and stopped at its end."""
from __future__ import annotations

import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
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


def longer(work: Path, tmp: Path, epochs: int) -> Path:
    """A copy of the work folder whose training runs `epochs` epochs, checkpointing each (a fault can land in the
    middle of it)."""
    root = tmp / f"work-{epochs}"
    shutil.copytree(work, root, ignore=shutil.ignore_patterns("models", "metrics", "checkpoints"))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(epochs=epochs, checkpoint_every=1)  # (the default, said here: the test needs it)
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


def test_s3_down_past_the_retry_budget_fails_the_run_and_a_rerun_resumes_it(team, work, tmp_path):
    """The artifact store gone under a running server for longer than the client waits: one line, no traceback,
    the run FAILED with its checkpoint kept. With S3 back, the rerun resumes into the same run and ends with
    every epoch's metrics and images exactly once."""
    root, _ = team
    folder, epochs = longer(work, tmp_path, 12), 12
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
def test_an_outage_in_mid_training_is_waited_out_and_loses_nothing(team, work, tmp_path, fault):
    """The tracking server killed (SIGKILL) and started again, or PostgreSQL restarted under it, while a training
    logs: the stage notes the outage once, waits, and finishes; no epoch's metrics or images are lost or doubled."""
    root, _ = team
    folder, epochs = longer(work, tmp_path, 12), 12
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
    finished = [r for r in found["runs"] if r["info"]["status"] == "FINISHED"]
    assert finished
    for run in finished:  # step 0 and each epoch
        epochs = int(next(p["value"] for p in run["data"]["params"] if p["key"] == "train.epochs"))
        listed = requests.get(f"{stack_.tracking_uri}/api/2.0/mlflow/artifacts/list",
                              params={"run_id": run["info"]["run_id"], "path": "images"}, auth=auth, timeout=30).json()
        assert len([f for f in listed["files"] if f["path"].endswith(".png")]) == epochs + 1


@pytest.fixture(scope="module")
def clones(team, repo, env, tmp_path_factory):
    """Clone A (a copy of the e2e repo, its results committed, the team remote in git) pushes to the stack's
    bucket; B, a fresh git clone of A given only the S3 keys, pulls. Returns (a, b, env with the client lines)."""
    from e2e import dvc, sh

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
    from e2e import dvc

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
    from e2e import drain_queue, dvc, sh

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


def models(client, run) -> list[tuple[str, str, list[str]]]:
    """(name, status, files) of each logged model of a run."""
    found = client.search_logged_models([run.info.experiment_id], f"source_run_id = '{run.info.run_id}'")
    return sorted((m.name, str(m.status), sorted(f.path for f in client.list_logged_model_artifacts(m.model_id)))
                  for m in found)


def test_import_runs_moves_a_local_history_onto_the_server_once(team, repo, tmp_path):
    """The e2e repo's local store (training and evaluation runs, with metrics, image grids, models, tags) copied
    onto the server: every run, every metric value, every artifact file, links between runs re-pointed; a second
    import copies nothing; a copy left half-made by an interrupted import is made again."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from ganpipe.keys import EVALUATES_TAG
    from ganpipe.track.migrate import DONE_TAG, SOURCE_TAG

    env = client_env(team)
    shutil.copy(repo / "mlflow.db", tmp_path / "mlflow.db")  # (its artifacts stay where the repo's runs put them)
    source = f"sqlite:///{tmp_path / 'mlflow.db'}"
    src = MlflowClient(source)
    [trained, *_] = src.search_runs([src.get_experiment_by_name("ganpipe").experiment_id],
                                    "tags.`ganpipe.run_kind` = 'training'")
    child = src.create_run(trained.info.experiment_id, run_name="an-evaluation", tags={  # as landing.py links one
        EVALUATES_TAG: trained.info.run_id, "mlflow.parentRunId": trained.info.run_id, "ganpipe.run_kind": "evaluation"})
    src.log_batch(child.info.run_id, metrics=[Metric("eval/fid", 12.5, 1000, 0)])
    src.set_terminated(child.info.run_id)
    unset = ganpipe("import-runs", "--from", source, env={k: v for k, v in env.items() if k != "MLFLOW_TRACKING_URI"})
    assert unset.returncode == 1 and "import-runs copies into the MLflow server named by" in unset.stderr
    done = ganpipe("import-runs", "--from", source, env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    old = [r for e in src.search_experiments() for r in src.search_runs([e.experiment_id])]
    assert old and f"imported {len(old)} run(s)" in done.stdout, done.stdout

    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
    try:
        dst = MlflowClient(env["MLFLOW_TRACKING_URI"])
        copies = {r.data.tags[SOURCE_TAG]: r for e in dst.search_experiments() for r in dst.search_runs(
            [e.experiment_id], f"tags.`{SOURCE_TAG}` != ''")}
        assert sorted(copies) == sorted(r.info.run_id for r in old)
        for run in old:
            copy = copies[run.info.run_id]
            assert (copy.info.run_name, copy.info.status, copy.info.start_time, copy.info.end_time) == \
                (run.info.run_name, run.info.status, run.info.start_time, run.info.end_time)
            assert copy.data.params == run.data.params and copy.data.tags[DONE_TAG] == "true"
            linked = {k: v for k, v in run.data.tags.items() if k in (EVALUATES_TAG, "mlflow.parentRunId")}
            assert {k: v for k, v in copy.data.tags.items() if k in linked} == \
                {k: copies[v].info.run_id for k, v in linked.items()}
            assert all(copy.data.tags[k] == v for k, v in run.data.tags.items() if k not in linked)
            for key in run.data.metrics:
                history = lambda client, rid: sorted((m.step, m.timestamp, m.value)  # noqa: E731
                                                     for m in client.get_metric_history(rid, key))
                assert history(dst, copy.info.run_id) == history(src, run.info.run_id), key
            files = lambda client, rid, path="": [  # noqa: E731
                g for f in client.list_artifacts(rid, path)
                for g in (files(client, rid, f.path) if f.is_dir else [(f.path, f.file_size)])]
            assert files(dst, copy.info.run_id) == files(src, run.info.run_id)
            assert models(dst, copy) == models(src, run)  # MLflow 3 keeps them beside the run
        assert any(models(src, r) for r in old)  # a run with a logged model was among them
        assert any(src.list_artifacts(r.info.run_id, "images") for r in old)  # and the image grids
        # interrupted in the middle of one run: that copy lacks its done tag
        half = copies[old[0].info.run_id].info.run_id
        dst.delete_tag(half, DONE_TAG)
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k, None)
    again = ganpipe("import-runs", "--from", source, env=env)
    assert "Downloading" not in again.stderr
    assert again.returncode == 0, again.stderr
    assert "imported 1 run(s)" in again.stdout and f"{len(old) - 1} already there" in again.stdout and \
        "1 half-imported run(s) made again" in again.stdout, again.stdout


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
