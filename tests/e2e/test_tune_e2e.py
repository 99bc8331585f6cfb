"""`ganpipe tune --workers 2` in one project with its default storage (SQLite in .ganpipe/): two worker processes
take trials at once, each trial a DVC experiment with its MLflow run, and a second call joins the study."""
from __future__ import annotations

import optuna

from ganpipe.tune import storage

from helpers.e2e import dvc, ganpipe

SPACE = "params:\n  train.g_lr: {low: 1e-4, high: 1e-3, log: true}\n  train.d_lr: {low: 1e-4, high: 1e-3, log: true}\n"


def test_two_workers_share_the_default_study_and_a_second_call_adds_trials(repo, env, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    args = ["tune", "--space", str(space), "--study", "local", "-S", "train.threads=1", "-S", "classifier.threads=1"]
    done = ganpipe(repo, env, *args, "--trials", "2", "--workers", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "study local: 2 complete" in done.stdout and "ganpipe reproduce " in done.stdout
    study = optuna.load_study(study_name="local", storage=storage.default_url(repo))
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert len({t.user_attrs["ganpipe.worker"] for t in trials}) == 2  # one trial per worker process
    assert {f"local-t{t.number}" for t in trials} <= set(dvc(repo, env, "exp", "ls", "--name-only").split())
    again = ganpipe(repo, env, *args, "--trials", "3")  # joins: one more trial
    assert again.returncode == 0 and "study local: 3 complete" in again.stdout, again.stderr[-2000:]
    other = ganpipe(repo, env, *args[:-4], "--trials", "3")  # the same name, other -S values: refused
    assert other.returncode == 1 and "made with another config and -S values" in other.stderr
