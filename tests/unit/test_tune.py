"""`ganpipe tune` before and after its trials (tune/study.py, storage.py, show.py): every check made before anything
starts, a study joined only with the same definition, the storage's errors, and the --show tables."""
from __future__ import annotations

import socket
import subprocess
import sys

import optuna
import pytest

from ganpipe.errors import ConfigError, TuneError
from ganpipe.tune import link, show, storage, study

from helpers import ROOT

SPACE = "params:\n  train.g_lr: {low: 1e-4, high: 1e-3, log: true}\n"
TWO = SPACE + ("objectives:\n  - {metric: eval/fid, direction: minimize}\n"
               "  - {metric: time/train_s, direction: minimize}\n")


def _opts(tmp_path, text=SPACE, **changes) -> study.Options:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    fields = {"configs": [], "sets": [], "space": path, "trials": 2,
              "storage": f"sqlite:///{tmp_path / 'tune.db'}", **changes}
    return study.Options(**fields)


def test_a_study_is_planned_from_the_config_and_the_space(tmp_path):
    job = study.prepare(ROOT, _opts(tmp_path, configs=["folder64_unlabelled"], sets=["train.seed=3"]))
    assert job.study == "folder64_unlabelled-space" and job.sets[-1] == "train.seed=3"
    assert "tracking.config=[folder64_unlabelled]" in job.sets
    assert [o.metric for o in job.space.objectives] == ["eval/inception_fid"]  # Inception-space evaluation


@pytest.mark.parametrize("changes, text, message", [
    ({"prune": "median"}, TWO, "--prune works with one objective"),
    ({"prune": "median", "sets": ["train.score=none"]}, SPACE, "train.score is none"),
    ({"prune": "median", "sets": ["train.score_every_kimg=null", "train.score_every_s=60"]}, SPACE,
     "set train.score_every_kimg"),
    ({"sets": ["tracking.enabled=false"]}, SPACE, "set tracking.enabled: true"),
    ({"workers": 3, "gpus": ["0", "1"]}, SPACE, "at least as many GPUs as workers"),
    ({"study": "a b"}, SPACE, "--study 'a b'"),
    ({"trials": 0}, SPACE, "--trials must be at least 1"),
    ({}, "params:\n  train.nope: {low: 1, high: 2}\n", "train.nope: not a params key"),
])
def test_a_study_that_cannot_run_is_refused_before_anything_starts(tmp_path, changes, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        study.prepare(ROOT, _opts(tmp_path, text, **changes))
    assert not (tmp_path / "tune.db").exists()


def test_gpus_are_listed_once_each():
    assert study.parse_gpus("0, 1") == ["0", "1"] and study.parse_gpus(None) is None
    with pytest.raises(ConfigError, match="each GPU once"):
        study.parse_gpus("0,0")


def test_a_study_is_joined_only_with_the_same_definition(tmp_path):
    opts = _opts(tmp_path, prune="median", prune_startup=2)
    first = study.open_study(study.prepare(ROOT, opts), opts)
    assert first.user_attrs[link.PRUNER_ATTR] == {"kind": "median", "startup": 2}
    again = study.open_study(study.prepare(ROOT, opts), opts)
    assert again._study_id == first._study_id
    other = _opts(tmp_path, sets=["train.seed=9"], prune="median", prune_startup=2)
    with pytest.raises(TuneError, match="made with another config and -S values"):
        study.open_study(study.prepare(ROOT, other), other)
    with pytest.raises(TuneError, match="another --prune options"):
        study.open_study(study.prepare(ROOT, opts), _opts(tmp_path))


def test_a_worker_that_finds_the_study_created_but_not_yet_defined_waits_for_its_creator(tmp_path, monkeypatch):
    """Two clones starting at once: one creates the study, the other loads it before the creator has recorded
    its definition (two calls in Optuna). The joiner waits for it; one whose creator died is told what to do."""
    import threading

    opts = _opts(tmp_path, prune="median", prune_startup=2)
    job = study.prepare(ROOT, opts)
    wanted = study.defines(job, opts, job.root)
    store = storage.open_storage(job.storage_url)
    created = optuna.create_study(study_name=job.study, storage=store)
    later = threading.Timer(0.6, lambda: (created.set_user_attr(link.PRUNER_ATTR, wanted["pruner"]),
                                          created.set_user_attr(study.DEFINES, wanted)))
    later.start()
    joined = study.open_study(job, opts)
    later.join()
    assert joined._study_id == created._study_id and joined.user_attrs[study.DEFINES] == wanted

    monkeypatch.setattr(study, "DEFINE_WAIT_S", 0.5)
    orphan = _opts(tmp_path, study="orphan")
    optuna.create_study(study_name="orphan", storage=store)
    with pytest.raises(TuneError, match="'orphan' .* exists but its definition was never recorded.*--study NEW_NAME"):
        study.open_study(study.prepare(ROOT, orphan), orphan)


def test_an_unreachable_storage_is_one_error_naming_it_without_its_password():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://optuna:s3cret@127.0.0.1:{port}/optuna"
    with pytest.raises(TuneError) as raised:
        storage.open_storage(url)
    assert f"postgresql+psycopg://optuna:***@127.0.0.1:{port}/optuna" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def _trials():
    """A finished study's trials as Optuna stores them: complete, pruned, failed and its retry."""
    dist = {"train.g_lr": optuna.distributions.FloatDistribution(1e-4, 1e-3, log=True)}
    s = optuna.create_study(study_name="t")
    s.set_user_attr("ganpipe.defines", {"objectives": [["eval/fid", "minimize"]]})
    for value, lr in ((30.0, 2e-4), (20.0, 5e-4), (25.0, 8e-4)):
        s.add_trial(optuna.create_trial(value=value, params={"train.g_lr": lr}, distributions=dist,
                                        user_attrs={"ganpipe.experiment": f"t-t{lr}", "ganpipe.mlflow_run": "r"}))
    s.add_trial(optuna.create_trial(state=optuna.trial.TrialState.PRUNED, params={"train.g_lr": 9e-4},
                                    distributions=dist, intermediate_values={1: 90.0}))
    s.add_trial(optuna.create_trial(state=optuna.trial.TrialState.FAIL, params={"train.g_lr": 1e-4},
                                    distributions=dist))
    s.add_trial(optuna.create_trial(value=40.0, params={"train.g_lr": 1e-4}, distributions=dist,
                                    system_attrs={"failed_trial": 4, "retry_history": [4]}))
    return s


def test_the_history_table_keeps_the_best_so_far_and_names_retries():
    s = _trials()
    table = show.history_table(s.get_trials(), ["eval/fid"]).splitlines()
    assert table[0] == "| trial | state | eval/fid | best so far | train.g_lr | experiment | mlflow run |"
    assert [row.split(" | ")[3] for row in table[2:]] == ["30", "20", "20", "20", "20", "20"]
    assert "| 3 | pruned |  | 20 |" in table[5] and "complete (retry of 4)" in table[7]
    assert show.counts(s.get_trials()) == "4 complete, 1 pruned, 1 fail"
    text = show.summary(s)
    assert "best: trial 1: eval/fid=20 (train.g_lr=0.0005)" in text and "ganpipe reproduce r" in text


def test_importances_need_two_complete_trials():
    s = _trials()
    assert set(show.importances(s)) == {"train.g_lr"}
    assert show.importances(optuna.create_study()) == {}


def test_tune_without_a_space_is_one_line_and_exit_1(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ganpipe.cli", "tune", "colour"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 1 and out.stderr.strip().startswith("error: ganpipe tune needs --space")


def test_a_new_study_is_refused_where_its_trial_names_are_taken(tmp_path):
    """A study recreated under an old name (its database deleted) would fail every trial on DVC's name check."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    git = lambda *a: subprocess.run(["git", *a], cwd=project, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "base")
    git("update-ref", "refs/exps/ab/cdef/lr-t0", "HEAD")  # as `dvc exp run -n lr-t0` leaves it
    opts = _opts(tmp_path, study="lr")
    with pytest.raises(TuneError, match=r"named like the trials of a new study 'lr' \(lr-t0\)"):
        study.open_study(study.prepare(project, opts), opts)
    other = _opts(tmp_path, study="lr2")
    assert study.open_study(study.prepare(project, other), other).study_name == "lr2"


def test_a_trial_with_the_params_of_a_finished_one_takes_its_values_without_running(tmp_path):
    """TPE can draw a categorical point twice: the same params train the same bytes, so no experiment runs."""
    from ganpipe.tune import worker

    opts = _opts(tmp_path, "params:\n  train.loss: {choices: [hinge, bce]}\n")
    job = study.prepare(ROOT, opts)
    s = study.open_study(job, opts)
    dist = {"train.loss": optuna.distributions.CategoricalDistribution(["hinge", "bce"])}
    s.add_trial(optuna.create_trial(value=12.5, params={"train.loss": "bce"}, distributions=dist,
                                    user_attrs={"ganpipe.experiment": "x-t0", "ganpipe.mlflow_run": "abc"}))
    s.enqueue_trial({"train.loss": "bce"})
    s.optimize(lambda trial: worker.objective(job, trial), n_trials=1)
    again = s.get_trials()[-1]
    assert again.value == 12.5 and again.user_attrs["ganpipe.same_as_trial"] == 0
    assert again.user_attrs["ganpipe.mlflow_run"] == "abc"
    assert not worker.log_dir(ROOT, job.study).exists()  # no experiment ran


def test_each_worker_runs_its_trials_on_its_own_gpu_with_the_trial_in_the_environment(tmp_path, monkeypatch):
    import dataclasses
    import os
    import types

    from ganpipe.tune import worker

    opts = _opts(tmp_path, gpus=["0", "1"], workers=2)
    job = dataclasses.replace(study.prepare(ROOT, opts), root=tmp_path, worker=1, gpu="1")
    seen = {}

    def popen(cmd, **kwargs):
        seen.update(cmd=cmd, env=kwargs["env"])
        return types.SimpleNamespace(wait=lambda: 0, pid=0)

    monkeypatch.setattr(worker.subprocess, "Popen", popen)
    code, log = worker._run_experiment(job, types.SimpleNamespace(number=4, _trial_id=9), "s-t4", {"train.g_lr": 2e-4})
    assert code == 0 and log == tmp_path / ".ganpipe" / "tune" / job.study / "t4.log"
    assert seen["cmd"][-2:] == ["-S", "train.g_lr=0.0002"]  # the drawn value last: it wins over the config's
    assert seen["cmd"][seen["cmd"].index("run"):seen["cmd"].index("run") + 4] == ["run", "--temp", "-n", "s-t4"]
    env = seen["env"]
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert (env[link.TRIAL_ENV], env[link.TRIAL_ID_ENV], env[link.STUDY_ENV]) == ("4", "9", job.study)
    assert env[link.WORKER_ENV] == str(os.getpid()) and env[link.STORAGE_ENV] == job.storage_url
