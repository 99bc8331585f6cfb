"""Team mode against real servers on 127.0.0.1 (PostgreSQL, SeaweedFS S3, `mlflow server` with basic auth),
started once per session by `ganpipe team up` (conftest.py): what `up` prints and keeps, logins, a training on
the server, down/up, and moving a local history onto it. Faults: test_team_faults.py; two clones at once:
test_team_clones.py."""
from __future__ import annotations

import os
import shutil
import stat

import pytest
import requests

from ganpipe.team import stack

from helpers.team import client_env, ganpipe, models, train


def test_up_prints_the_client_lines_and_keeps_credentials_private(team):
    root, out = team
    lines = [line for line in out.splitlines() if line.startswith("export ")]
    assert [line.split("=")[0] for line in lines] == ["export MLFLOW_TRACKING_URI", "export MLFLOW_TRACKING_USERNAME",
                                                       "export MLFLOW_TRACKING_PASSWORD", "export GANPIPE_TUNE_STORAGE"]
    # the studies' database: its own role, not PostgreSQL's admin, and Optuna's tables already made
    storage_url = lines[-1].split("=", 1)[1]
    assert storage_url.startswith("postgresql+psycopg://optuna:") and storage_url.endswith("/optuna")
    import optuna

    assert isinstance(optuna.get_all_study_summaries(storage_url, include_best_trial=False), list)
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


def test_training_lands_on_the_server_with_artifacts_in_the_bucket(team, team_work):
    env = client_env(team)
    done = train(team_work, env)
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
def test_bad_credentials_stop_before_training_with_one_line(team, team_work, change, message):
    env = {**client_env(team), **change}
    env = {k: v for k, v in env.items() if v is not None}
    (team_work / "models" / "generator.safetensors").unlink(missing_ok=True)
    done = train(team_work, env)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (team_work / "models" / "generator.safetensors").exists()


def test_a_user_without_write_permission_is_refused_before_training(team, team_work):
    root, _ = team
    stack_, creds = stack.load(root)
    admin = ("admin", creds["GANPIPE_TEAM_ADMIN_PASSWORD"])
    made = requests.post(f"{stack_.tracking_uri}/api/2.0/mlflow/users/create",
                         json={"username": "reader", "password": "Reader-pass-1234"}, auth=admin, timeout=10)
    assert made.ok, made.text
    # the experiment exists (made by the previous test's user); the default permission of others is READ
    env = {**client_env(team), "MLFLOW_TRACKING_USERNAME": "reader", "MLFLOW_TRACKING_PASSWORD": "Reader-pass-1234"}
    (team_work / "models" / "generator.safetensors").unlink(missing_ok=True)
    done = train(team_work, env)
    assert done.returncode == 1 and "user 'reader' write here (403 Permission denied)" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (team_work / "models" / "generator.safetensors").exists()


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


def _keep_a_few(client, keep: set[str], most: int = 8) -> None:
    """Delete all but `keep` and the newest runs of the copied store (the e2e tier left dozens): copying them all
    tests nothing more. A kept run linked to a deleted one goes too, so every link can be re-pointed."""
    from ganpipe.keys import EVALUATES_TAG

    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    kept = keep | {r.info.run_id for r in sorted(runs, key=lambda r: -r.info.start_time)[:most]}
    for run in runs:
        links = {run.data.tags.get(k) for k in (EVALUATES_TAG, "mlflow.parentRunId")} - {None}
        if run.info.run_id not in kept or not links <= kept:
            client.delete_run(run.info.run_id)


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
    _keep_a_few(src, {trained.info.run_id, child.info.run_id})
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
