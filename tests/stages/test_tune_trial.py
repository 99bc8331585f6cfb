"""The train stage inside a `ganpipe tune` trial (tune/link.py), against a real Optuna study in SQLite: its scores
reported at their positions, a pruned trial ending KILLED and tagged, and a training that stops by itself when
its worker is gone or the study has failed its trial."""
from __future__ import annotations

import os
import subprocess

import optuna
import pytest

from ganpipe.errors import PRUNED_EXIT
from ganpipe.tune import link, storage

from helpers import runs, stage, write_params

# 270 training images in batches of 32: 8 steps (0.256 kimg) an epoch; scores at 0.512, 1.024 and 1.28 kimg,
# which are steps 1, 2 and 3 of the 0.5 kimg cadence
TRAIN = {"score": "auto", "epochs": 5, "score_every_kimg": 0.5, "score_n": 120}


def _study(tmp_path, monkeypatch, pruner: dict | None, worker_pid: int | None = None):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    study = optuna.create_study(study_name="s", storage=storage.open_storage(url))
    study.set_user_attr(link.PRUNER_ATTR, pruner)
    # an earlier trial with perfect scores at every step: any real score is worse than its median
    study.add_trial(optuna.create_trial(value=0.0, intermediate_values={1: 0.0, 2: 0.0, 3: 0.0}))
    trial = study.ask()
    for key, value in {link.STORAGE_ENV: url, link.STUDY_ENV: "s", link.TRIAL_ENV: str(trial.number),
                       link.TRIAL_ID_ENV: str(trial._trial_id),
                       link.WORKER_ENV: str(worker_pid or os.getpid())}.items():
        monkeypatch.setenv(key, value)
    return study, trial


def _train(workdir, capsys) -> tuple[int, str]:
    write_params(workdir, train=TRAIN)
    for name in ("prepare", "train_classifier"):
        assert stage(name)([]) == 0, (name, capsys.readouterr().err)
    capsys.readouterr()
    return stage("train")([]), capsys.readouterr().err


def test_a_trial_reports_each_score_at_its_step_and_tags_its_run(workdir, capsys, tmp_path, monkeypatch):
    study, trial = _study(tmp_path, monkeypatch, pruner=None)
    code, err = _train(workdir, capsys)
    assert code == 0, err
    (run,) = runs(workdir)
    assert run.info.status == "FINISHED"
    assert (run.data.tags["tune.study"], run.data.tags["tune.trial"]) == ("s", str(trial.number))
    reported = study._storage.get_trial(trial._trial_id).intermediate_values
    key = next(k for k in run.data.metrics if k.startswith("score/fid"))
    from mlflow.tracking import MlflowClient

    curve = [m.value for m in sorted(MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}").get_metric_history(
        run.info.run_id, key), key=lambda m: m.step)]
    assert sorted(reported) == [1, 2, 3] and [reported[s] for s in (1, 2, 3)] == curve


def test_a_pruned_trial_stops_its_training_ends_killed_and_says_so(workdir, capsys, tmp_path, monkeypatch):
    study, trial = _study(tmp_path, monkeypatch, pruner={"kind": "median", "startup": 1})
    code, err = _train(workdir, capsys)
    assert code == PRUNED_EXIT
    assert f"pruned: trial {trial.number} of study s at 0.512 kimg" in err and "Traceback" not in err
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.system_attrs[link.PRUNED_ATTR] == 0.512 and list(stored.intermediate_values) == [1]
    (run,) = runs(workdir)
    assert run.info.status == "KILLED" and run.data.tags[link.STATE_TAG] == "pruned"
    assert not (workdir / "models" / "generator.safetensors").exists()  # no result: nothing written


@pytest.mark.parametrize("why", ["worker gone", "trial failed"])
def test_a_training_stops_by_itself_when_its_worker_is_gone_or_its_trial_failed(why, workdir, capsys, tmp_path,
                                                                                  monkeypatch):
    dead = None
    if why == "worker gone":
        proc = subprocess.Popen(["true"])
        proc.wait()
        dead = proc.pid
    study, trial = _study(tmp_path, monkeypatch, pruner=None, worker_pid=dead)
    if why == "trial failed":  # as another worker's heartbeat check does to a silent trial
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    code, err = _train(workdir, capsys)
    assert code == 1 and "Traceback" not in err
    assert ("is gone; stopping its training" if dead else f"trial {trial.number} of study s is fail") in err
    (run,) = runs(workdir)
    assert run.info.status == "FAILED" and run.data.tags[link.STATE_TAG] == "failed"
