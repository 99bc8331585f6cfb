"""A `ganpipe tune` worker: takes trials from the study until it holds enough finished ones.

Each trial is one DVC experiment, `dvc exp run --temp -n STUDY-tN` with the config's and the sampled `-S`
values, so it is reproducible like any other (`ganpipe reproduce STUDY-tN` in the clone that ran it, or its
MLflow run id). The stages see the trial through tune/link.py's variables: they tag their runs with it, and
the train stage reports its scores and may be pruned. The objective values come from the trial's MLflow
training run, where the evaluation's scores land.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ganpipe.console import note
from ganpipe.errors import TuneError
from ganpipe.params.config import TrackingConfig
from ganpipe.tune import link, storage
from ganpipe.tune.space import Space, assignments

MAX_FAILED = 3  # failed trials (beyond the heartbeat's retries) after which a worker stops: the config is at fault


class TrialFailed(Exception):
    """One trial's pipeline failed (its params, a crash): the trial is FAIL, the study goes on."""


@dataclass(frozen=True)
class Job:
    """What every worker of one `ganpipe tune` call shares, and which worker this is."""
    root: Path
    study: str
    storage_url: str
    trials: int  # finished (complete or pruned) trials the study should hold
    sets: tuple[str, ...]  # the config's -S assignments, then the user's
    space: Space
    tracking: TrackingConfig
    heartbeat_s: int
    worker: int = 0
    gpu: str | None = None  # CUDA_VISIBLE_DEVICES of this worker's trials


def log_dir(root: Path, study: str) -> Path:
    return root / ".ganpipe" / "tune" / study


def experiment_refs(root: Path) -> dict[str, str]:
    """This clone's DVC experiments: name -> git ref (refs/exps/<baseline>/<name>)."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=root, capture_output=True,
                          text=True).stdout.split()
    return {ref.rsplit("/", 1)[-1]: ref for ref in refs}


def experiment_name(study: str, number: int) -> str:
    return f"{study}-t{number}"


def work(job: Job) -> int:
    """Run trials until the study holds job.trials finished ones; how many this worker ran."""
    import optuna
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    store = storage.open_storage(job.storage_url, job.heartbeat_s)
    # constant_liar: a running trial's params count as taken, so parallel workers spread out instead of
    # sampling the same point
    study = optuna.load_study(study_name=job.study, storage=store, pruner=storage.pruner(store, job.study),
                              sampler=optuna.samplers.TPESampler(constant_liar=True))
    ran = 0
    while True:
        fail_stale_trials(study)  # a killed worker's trial: FAIL, and re-queued (storage.MAX_RETRY)
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        finished = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
        if finished >= job.trials:
            return ran
        # the heartbeat's retry lists the trials it re-runs: those failures are being made good
        retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
        failed = sum(1 for t in trials if t.state == TrialState.FAIL and t.number not in retried)
        if failed >= max(MAX_FAILED, job.trials):
            raise TuneError(f"{failed} trials of study {job.study} failed; their logs are in "
                            f"{log_dir(job.root, job.study)}/ (`ganpipe tune --show {job.study}` lists them)")
        busy = states.count(TrialState.RUNNING)
        if finished + busy >= job.trials and TrialState.WAITING not in states:
            time.sleep(min(2.0, job.heartbeat_s / 2))  # the last ones run elsewhere: wait, they may fail
            continue
        study.optimize(lambda trial: objective(job, trial), n_trials=1, catch=(TrialFailed,))
        ran += 1


def objective(job: Job, trial) -> float | tuple[float, ...]:
    """One trial: its params, its DVC experiment, its objective values from MLflow."""
    import optuna

    values = {d.key: d.suggest(trial) for d in job.space.dimensions}
    trial.set_user_attr("ganpipe.worker", f"{os.uname().nodename}:{os.getpid()}")
    earlier = _same_params(trial)
    if earlier is not None:  # same params, same bytes: DVC would restore them from its run cache anyway
        for key, value in earlier.user_attrs.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("ganpipe.same_as_trial", earlier.number)
        _say(job, trial.number, f"same params as trial {earlier.number}: its values")
        return _result(earlier.values)
    name = experiment_name(job.study, trial.number)
    trial.set_user_attr("ganpipe.experiment", name)
    began = time.perf_counter()
    code, log = _run_experiment(job, trial, name, values)
    trial.set_user_attr("ganpipe.dvc_s", round(time.perf_counter() - began, 3))
    if code != 0:
        pruned_at = trial.storage.get_trial_system_attrs(trial._trial_id).get(link.PRUNED_ATTR)
        if pruned_at is not None:
            _say(job, trial.number, f"pruned at {pruned_at:g} kimg ({name}; log {log})")
            raise optuna.TrialPruned()
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
        _say(job, trial.number, f"failed ({name}); the end of its log {log}:\n  " + "\n  ".join(tail))
        raise TrialFailed(name)
    run = _training_run(job, trial.number, name)
    trial.set_user_attr("ganpipe.mlflow_run", run.run_id)
    missing = [o.metric for o in job.space.objectives if o.metric not in run.metrics]
    if missing:
        have = ", ".join(sorted(run.metrics))
        _say(job, trial.number, f"failed: its MLflow run {run.run_id} has no {missing[0]} (it has: {have})")
        raise TrialFailed(name)
    from ganpipe.track import tracking

    tracking.log_to_run(run.run_id, {}, [], {link.STATE_TAG: "complete"})
    scores = [run.metrics[o.metric] for o in job.space.objectives]
    shown = ", ".join(f"{o.metric}={v:.4g}" for o, v in zip(job.space.objectives, scores))
    _say(job, trial.number, f"{shown} in {time.perf_counter() - began:.0f} s ({name}, MLflow run {run.run_id})")
    return _result(scores)


def _result(values):
    return values[0] if len(values) == 1 else tuple(values)


def _say(job: Job, number: int, text: str) -> None:
    note(f"[worker {job.worker}] trial {number}: {text}")


def _same_params(trial) -> object | None:
    from optuna.trial import TrialState

    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if other.params == trial.params and other.number != trial.number:
            return other
    return None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the worker dies, even by SIGKILL (Linux; elsewhere the train
    stage's own check of the worker's pid stops the training)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _run_experiment(job: Job, trial, name: str, values: dict) -> tuple[int, Path]:
    """`dvc exp run --temp` of the trial, its output in the study's log folder; (exit status, log)."""
    args = ["exp", "run", "--temp", "-n", name]
    for assignment in [*job.sets, *assignments(values)]:
        args += ["-S", assignment]
    venv = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}",
           link.STORAGE_ENV: job.storage_url, link.STUDY_ENV: job.study, link.TRIAL_ENV: str(trial.number),
           link.TRIAL_ID_ENV: str(trial._trial_id), link.WORKER_ENV: str(os.getpid())}
    if job.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = job.gpu
    log = log_dir(job.root, job.study) / f"t{trial.number}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        out.write(f"$ dvc {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=job.root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)
        try:
            return proc.wait(), log
        except BaseException:  # Ctrl-C or SIGTERM of the worker: its trial's processes stop with it
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise


def _training_run(job: Job, number: int, name: str):
    """The trial's MLflow training run: the one its train stage tagged, or, when DVC restored the training
    from its run cache (these params trained before, outside this study), the run that trained those bytes."""
    from ganpipe.track import tracking

    runs = tracking.find_runs(job.tracking, {"tune.study": job.study, "tune.trial": str(number),
                                             "ganpipe.run_kind": "training"})
    if runs:
        return runs[0]
    sha = _generator_sha256(job.root, name)
    runs = sha and tracking.find_runs(job.tracking, {"ganpipe.generator_sha256": sha, "ganpipe.run_kind": "training"})
    if not runs:
        raise TrialFailed(f"{name} finished but no finished MLflow training run has its generator; is "
                          f"tracking.enabled true and the store the one this worker reads ({tracking.tracking_uri()})?")
    return runs[0]


def _generator_sha256(root: Path, name: str) -> str | None:
    """sha256 of the generator the experiment `name` holds (its dvc.lock names the file in the DVC cache)."""
    import hashlib

    import yaml

    ref = experiment_refs(root).get(name)
    if ref is None:
        return None
    lock = yaml.safe_load(subprocess.run(["git", "show", f"{ref}:dvc.lock"], cwd=root, capture_output=True,
                                         text=True).stdout or "{}")
    outs = lock.get("stages", {}).get("train", {}).get("outs", [])
    md5 = next((o["md5"] for o in outs if o["path"].endswith("generator.safetensors")
                and "best" not in o["path"]), None)
    cached = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:] if md5 else None
    if cached is None or not cached.is_file():
        return None
    return hashlib.sha256(cached.read_bytes()).hexdigest()
