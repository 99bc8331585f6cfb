"""Sharing and verifying results on the session's tiny repo (tests/helpers/e2e.py): `ganpipe push` / `pull` through a
local-directory remote and their refusals, `ganpipe reproduce` of a run made in the same test, and the MLflow
UI as a person sees it."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from helpers.e2e import ROOT, dvc, ganpipe, sh


def test_push_and_pull_give_a_collaborator_every_output_without_retraining(repo, env, tmp_path):
    remote = tmp_path / "remote"
    dvc(repo, env, "remote", "add", "-d", "shared", str(remote))  # a local-directory remote, as S3 would be
    sh("git", "add", "-A", cwd=repo, env=env)
    sh("git", "commit", "-q", "-m", "remote", cwd=repo, env=env)
    pushed = ganpipe(repo, env, "push")
    assert pushed.returncode == 0 and "pushed to shared" in pushed.stdout, pushed.stderr
    collab = tmp_path / "collab"
    sh("git", "clone", "-q", str(repo), str(collab), cwd=tmp_path, env=env)
    # an output made or edited here is not overwritten: the pull names it and stops before fetching anything
    (collab / "models").mkdir(exist_ok=True)
    (collab / "models" / "generator.safetensors").write_text("mine")
    refused = ganpipe(collab, env, "pull")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "1 output(s) here differ from this commit's" in refused.stderr, refused.stderr
    assert "models/generator.safetensors. Move them aside" in refused.stderr, refused.stderr
    assert (collab / "models" / "generator.safetensors").read_text() == "mine"
    assert not (collab / "models" / "classifier.safetensors").exists() and not (collab / ".dvc" / "cache").exists()
    (collab / "models" / "generator.safetensors").unlink()
    pulled = ganpipe(collab, env, "pull")
    assert pulled.returncode == 0 and "pulled from shared" in pulled.stdout, pulled.stderr
    params = yaml.safe_load((repo / "params.yaml").read_text())["paths"]
    for key in ("classifier", "generator", "samples", "sample_grid", "eval_hist"):
        assert (collab / params[key]).read_bytes() == (repo / params[key]).read_bytes(), key
    assert (collab / params["prepared"] / "train.safetensors").is_file()
    assert "up to date" in dvc(collab, env, "status")
    assert "Running stage" not in dvc(collab, env, "repro")  # nothing to retrain
    assert not (collab / "mlflow.db").exists()


def test_push_and_pull_name_a_missing_or_incomplete_remote_and_change_nothing(repo, env, tmp_path):
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path, env=env)
    settings = [line.split("=")[0] for line in dvc(clone, env, "config", "--list").splitlines()]
    for name in [k[len("remote."):-len(".url")] for k in settings if k.startswith("remote.") and k.endswith(".url")]:
        dvc(clone, env, "remote", "remove", name)
    out = ganpipe(clone, env, "pull")
    assert out.returncode == 1 and "no DVC remote is configured" in out.stderr and "dvc remote add -d" in out.stderr
    dvc(clone, env, "remote", "add", "-d", "gone", str(tmp_path / "unmounted"))
    out = ganpipe(clone, env, "pull")
    assert out.returncode == 1 and "is the folder" in out.stderr and "which does not exist here" in out.stderr
    (tmp_path / "empty").mkdir()
    dvc(clone, env, "remote", "add", "-f", "-d", "empty", str(tmp_path / "empty"))
    out = ganpipe(clone, env, "pull")
    assert out.returncode == 1 and "does not have" in out.stderr and "models/generator.safetensors" in out.stderr
    out = ganpipe(clone, env, "push")
    assert out.returncode == 1 and "this clone does not have" in out.stderr and "Nothing was pushed" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (clone / "models" / "generator.safetensors").exists()  # nothing moved, either way
    assert not any((tmp_path / "empty").iterdir())


def test_reproduce_a_run_made_earlier_in_this_test_by_id_and_by_experiment_name(repo, env, tmp_path):
    from mlflow.tracking import MlflowClient

    dvc(repo, env, "exp", "run", "--temp", "-n", "repro-me", "-S", "train.epochs=1", "-S", "train.loss=bce")
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id],
                                "tags.`dvc.exp_name` = 'repro-me'")
    untouched = {"params": (repo / "params.yaml").read_bytes(), "head": sh("git", "rev-parse", "HEAD", cwd=repo, env=env),
                 "status": sh("git", "status", "--porcelain", cwd=repo, env=env)}
    report_file = tmp_path / "by_id.json"
    out = ganpipe(repo, env, "reproduce", run.info.run_id, "--out", str(report_file))
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "REPRODUCED" in out.stdout and "NOT" not in out.stdout and "warning" not in out.stderr
    report = json.loads(report_file.read_text())
    assert report["reproduced"] and report["expected"].startswith("exact: same torch build")
    checks = {c["name"]: c for c in report["checks"]}
    # the run's own params (1 epoch, bce) were rebuilt, not the commit's 2-epoch hinge params
    assert checks["generator"]["logged"] == run.data.tags["ganpipe.generator_sha256"]
    assert {"classifier", "data (prepared sha256)", "eval/fid", "eval/is", "eval_real/fid", "loss/d"} <= set(checks)
    assert all(c["result"] == "identical" for c in checks.values())
    # what train.precision: auto resolved to, shown beside the hashes (the same here: the same machine)
    assert checks["precision (train, resolved)"]["logged"] == run.data.tags["train.precision_resolved"]
    # by experiment name: its refs/exps commit, checked against that commit's dvc.lock and metrics files
    out = ganpipe(repo, env, "reproduce", "repro-me")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "DVC experiment repro-me" in out.stdout and "models/generator.safetensors" in out.stdout
    assert "metrics/eval.json" in out.stdout and "REPRODUCED" in out.stdout
    # the user's working tree, HEAD and store were not touched; no worktree is left behind
    assert (repo / "params.yaml").read_bytes() == untouched["params"]
    assert sh("git", "rev-parse", "HEAD", cwd=repo, env=env) == untouched["head"]
    assert sh("git", "status", "--porcelain", cwd=repo, env=env) == untouched["status"]
    assert len(sh("git", "worktree", "list", cwd=repo, env=env).splitlines()) == 1
    assert len(client.search_runs([run.info.experiment_id], "tags.`dvc.exp_name` = 'repro-me'")) == 1


def test_reproduce_refuses_what_it_cannot_find(repo, env):
    out = ganpipe(repo, env, "reproduce", "no-such-experiment")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "'no-such-experiment' is not an MLflow run id, a git commit or a DVC experiment name" in out.stderr
    out = ganpipe(repo, env, "reproduce", "it's")  # a quote: quoted safely in MLflow's filter, then not found
    assert out.returncode == 1 and "\"it's\" is not an MLflow run id" in out.stderr and "Traceback" not in out.stderr
    out = ganpipe(repo, env, "reproduce", "--", "--output=/tmp/x")  # never handed to git as an option
    assert out.returncode == 1 and "must not be empty, start with '-'" in out.stderr
    out = ganpipe(repo, env, "reproduce", "0" * 32)
    assert out.returncode == 1 and f"no MLflow run '{'0' * 32}'" in out.stderr
    down = {**env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    out = ganpipe(repo, down, "reproduce", "0" * 32)
    assert out.returncode == 1 and "cannot use the MLflow tracking store http://127.0.0.1:9" in out.stderr
    assert len(sh("git", "worktree", "list", cwd=repo, env=env).splitlines()) == 1


def test_the_mlflow_ui_shows_the_runs_their_scores_and_the_epoch_images(repo, env, tmp_path):
    # installs chromium + chromium-driver with apt-get when missing; drives the real UI of `mlflow server`
    from mlflow.tracking import MlflowClient

    sh("git", "add", "-A", cwd=repo, env=env)  # dvc.lock committed: the --temp experiment below only re-evaluates
    sh("git", "commit", "-q", "--allow-empty", "-m", "outputs", cwd=repo, env=env)
    dvc(repo, env, "exp", "run", "--temp", "-n", "ui-eval", "-S", "evaluate.dc_k=4")  # an evaluation run to show
    out = subprocess.run([sys.executable, str(ROOT / "checks" / "mlflow_ui.py"), "--root", str(repo),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    if out.returncode == 3:
        pytest.skip(f"no browser for the UI check: {out.stderr.strip()}")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
    top = {r.info.run_name for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert f"'Training runs' lists every top-level run ({len(top)} names" in out.stdout, out.stdout
    # every eval/* and eval_real/* metric of each run checked (classifier-space scores and copy detection)
    shown = dict(re.findall(r"run (\S+) shows all (\d+) eval metrics by name with their logged values", out.stdout))
    assert "ui-eval" in shown, out.stdout
    for r in runs:
        if r.info.run_name in shown:
            n_eval = sum(k.startswith(("eval/", "eval_real/")) for k in r.data.metrics)
            assert int(shown[r.info.run_name]) == n_eval >= 31, (r.info.run_name, shown, n_eval)
    # its training run: the newest that trained this generator (an earlier test's retrain may be it)
    assert re.search(r"evaluation run ui-eval links to its training run [\w-]+", out.stdout), out.stdout
    # the newest scored run trained 1 or 2 epochs, depending on which tests ran before
    assert re.search(r"`samples` grid renders \(\d+x\d+ px\) at step 0 and at step ([12]), slider steps 0\.\.\1",
                     out.stdout), out.stdout
    for name in ("runs.png", "compare.png", "run.png", "samples.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_the_ui_check_names_each_metric_exactly(monkeypatch):
    """`eval/is` must be found as its own row, not inside `eval/is_split_mean`, and with its own value."""
    sys.path.insert(0, str(ROOT / "checks"))
    import mlflow_ui

    class Page:
        def __init__(self, rows):
            self.rows = rows

        def open(self, url):
            pass

        def js(self, script, *args):
            return self.rows if script == mlflow_ui.ROWS else (str(args[0]) if args else None)

    run = {"info": {"run_id": "r", "run_name": "n"},
           "data": {"metrics": [{"key": "eval/is", "value": 9.5}, {"key": "eval/is_split_mean", "value": 9.4}]}}
    monkeypatch.setattr(mlflow_ui, "wait_until", lambda what, probe, **kw: probe() or (_ for _ in ()).throw(
        mlflow_ui.Missing(what)))
    assert "shows all 2 eval metrics" in mlflow_ui.run_page(Page([["eval/is", "9.5"], ["eval/is_split_mean", "9.4"]]),
                                                            "b", run, None)
    with pytest.raises(mlflow_ui.Missing, match="metric table"):  # only the longer name is on the page
        mlflow_ui.run_page(Page([["eval/is_split_mean", "9.4"]]), "b", run, None)
    with pytest.raises(mlflow_ui.Missing, match=r"eval/is = 9.5 on the page of run n \(it shows '9.4'\)"):
        mlflow_ui.run_page(Page([["eval/is", "9.4"], ["eval/is_split_mean", "9.4"]]), "b", run, None)
