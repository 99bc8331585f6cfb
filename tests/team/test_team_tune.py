"""`ganpipe tune` across two clones sharing one study in the team stack's PostgreSQL: two workers at once, one
killed (SIGKILL) in the middle of a trial. The study ends with every trial finished, pruned, or failed and
retried; each finished trial is a DVC experiment in the clone that ran it with its MLflow run on the server;
the best trial reproduces; `--show` and `ganpipe report STUDY` show the study."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import optuna
import pytest

from ganpipe.team import stack
from ganpipe.tune import link

STUDY = "team-tune"
SPACE = """# the two params searched
params:
  train.g_lr: {low: 1e-4, high: 2e-3, log: true}
  train.loss: {choices: [bce, hinge]}
"""
# 540 training images in batches of 32: 0.512 kimg an epoch, scored each epoch (every 0.5 kimg)
ARGS = ["--space", "SPACE", "--trials", "3", "--study", STUDY, "--heartbeat", "2", "--prune", "--prune-startup", "2",
        "-S", "train.epochs=6", "-S", "train.score_every_kimg=0.5", "-S", "train.threads=1"]


@pytest.fixture(scope="module")
def clones(team, repo, env, tmp_path_factory):
    """Two copies of the e2e project (as two machines' clones with their data pulled) and the teammates' env."""
    tmp = tmp_path_factory.mktemp("tune")
    made = []
    for name in ("a", "b"):
        shutil.copytree(repo, tmp / name, symlinks=True, ignore=shutil.ignore_patterns("mlruns", "mlflow.db", "exps"))
        made.append(tmp / name)
    (tmp / "space.yaml").write_text(SPACE)
    return made[0], made[1], tmp / "space.yaml", {**env, **stack.client_env(*stack.load(team[0]))}


def _worker(clone, space, env) -> subprocess.Popen:
    args = [a if a != "SPACE" else str(space) for a in ARGS]
    return subprocess.Popen([sys.executable, "-m", "ganpipe.cli", "tune", *args], cwd=clone, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _training(clone) -> bool:
    """Whether a trial of this clone's worker is in its train stage."""
    logs = (clone / ".ganpipe" / "tune" / STUDY).glob("t*.log")
    return any("Running stage 'train'" in log.read_text(errors="replace") for log in logs)


def _experiments(clone, env) -> set[str]:
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=clone, env=env,
                          capture_output=True, text=True, check=True).stdout.split()
    return {r.rsplit("/", 1)[-1] for r in refs}


def test_two_clones_share_a_study_a_killed_worker_is_retried_and_the_best_trial_reproduces(clones, monkeypatch):
    from mlflow.tracking import MlflowClient

    a, b, space, env = clones
    killed = _worker(a, space, env)
    worker = _worker(b, space, env)
    deadline = time.time() + 300
    while not _training(a) and killed.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert killed.poll() is None, killed.communicate()[0][-3000:]
    killed.kill()  # SIGKILL in the middle of its trial: no cleanup runs, its heartbeat stops
    killed.wait()
    out, _ = worker.communicate(timeout=900)
    assert worker.returncode == 0, out[-3000:]

    study = optuna.load_study(study_name=STUDY, storage=env[link.STORAGE_ENV])
    trials = study.get_trials()
    states = {t.number: t.state.name for t in trials}
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(finished) >= 3 and set(states.values()) <= {"COMPLETE", "PRUNED", "FAIL"}, states
    assert failed, f"the killed worker's trial was not failed: {states}"
    for trial in failed:  # each failed trial was run again, with its params, and finished
        retries = [t for t in trials if trial.number in t.system_attrs.get("retry_history", ())]
        assert retries and retries[-1].state.name in ("COMPLETE", "PRUNED"), states
        assert retries[-1].params == trial.params

    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, env[key])
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiments = _experiments(a, env) | _experiments(b, env)
    for trial in finished:
        runs = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id],
                                  f"tags.`tune.study` = '{STUDY}' AND tags.`tune.trial` = '{trial.number}' AND "
                                  f"tags.`ganpipe.run_kind` = 'training'")
        assert len(runs) == 1, (trial.number, states)
        run = runs[0]
        if trial.state.name == "COMPLETE":
            assert run.info.status == "FINISHED" and run.data.tags[link.STATE_TAG] == "complete"
            assert run.info.run_id == trial.user_attrs["ganpipe.mlflow_run"]
            assert trial.value == run.data.metrics["eval/fid"]
            assert f"{STUDY}-t{trial.number}" in experiments
        else:  # pruned: never a result
            assert run.info.status == "KILLED" and run.data.tags[link.STATE_TAG] == "pruned"
            assert f"{STUDY}-t{trial.number}" not in experiments

    best = study.best_trial
    clone = a if f"{STUDY}-t{best.number}" in _experiments(a, env) else b
    done = subprocess.run([sys.executable, "-m", "ganpipe.cli", "reproduce", best.user_attrs["ganpipe.mlflow_run"]],
                          cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "REPRODUCED" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    shown = subprocess.run([sys.executable, "-m", "ganpipe.cli", "tune", "--show", STUDY], cwd=b, env=env,
                           capture_output=True, text=True)
    assert shown.returncode == 0 and f"best: trial {best.number}:" in shown.stdout, shown.stderr
    page = clone / "study.html"
    made = subprocess.run([sys.executable, "-m", "ganpipe.cli", "report", STUDY, "-o", str(page)], cwd=clone, env=env,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    text = page.read_text()
    complete = [t for t in finished if t.state.name == "COMPLETE"]
    assert f"study {STUDY} ({len(complete)} runs)" in text and all(f"{STUDY}-t{t.number}" in text for t in complete)
