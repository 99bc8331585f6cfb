"""The only module that imports mlflow. Maps the pipeline's plain numbers, images and files onto MLflow runs.

Store: $MLFLOW_TRACKING_URI if set, else sqlite:///<root>/mlflow.db with artifacts in <root>/mlruns, where
<root> is $DVC_ROOT (DVC sets it to the real repository root even when `dvc exp run --temp/--queue` runs the
stage in a temporary copy) or else the current directory. So every run lands in the one store.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ganpipe.config import TrackingConfig

GENERATOR_TAG = "ganpipe.generator_sha256"


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or used; the message says how to fix it."""


def project_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def git_tags(root: Path, outputs: list[str]) -> dict[str, str]:
    """Commit and dirty flag of the code that ran in `root` (the stage's working directory: under
    `dvc exp run --temp/--queue` that is DVC's temporary checkout of the baseline, not the user's workspace).

    Dirty means a tracked file differs from the commit, other than params.yaml (logged in full with the run,
    and `ganpipe reproduce` rebuilds it from there), dvc.lock and the pipeline's own outputs (some are
    git-tracked metrics): the running pipeline rewrites those, which says nothing about the code.
    """

    def git(*args: str) -> str:  # not stripped: porcelain lines start with a status column that may be blank
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return out.stdout if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD").strip() or os.environ.get("DVC_EXP_BASELINE_REV", "")
    skip = ("dvc.lock", "params.yaml", *outputs)
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    changed = [p for p in changed if not any(p == s or p.startswith(s.rstrip("/") + "/") for s in skip)]
    return {"git.commit": commit or "unknown", "git.dirty": str(bool(changed)).lower()}


def dvc_tags(cfg: Any = None, root: Path | None = None) -> dict[str, str]:
    """The DVC experiment this stage runs under (`dvc exp run` sets these), or 'workspace' for `dvc repro`.

    Under an experiment, with `cfg` (the Config being run) and `root`: also `dvc.params_changed`, the params
    that differ from the baseline commit's params.yaml, e.g. 'train.g_lr=0.0001; train.loss=bce'.
    """
    tags = {"dvc.exp_name": os.environ.get("DVC_EXP_NAME", "workspace")}
    baseline = os.environ.get("DVC_EXP_BASELINE_REV")
    if baseline:
        tags["dvc.exp_baseline"] = baseline
        if cfg is not None and root is not None:
            tags["dvc.params_changed"] = _params_changed(cfg, root, baseline)
    return tags


def _params_changed(cfg: Any, root: Path, baseline: str) -> str:
    import yaml

    from ganpipe.config import ConfigError
    from ganpipe.overrides import changed_params

    shown = subprocess.run(["git", "show", f"{baseline}:params.yaml"], cwd=root, capture_output=True, text=True)
    if shown.returncode != 0:
        return f"unknown (no params.yaml at {baseline[:7]})"
    try:
        changed = changed_params(cfg, yaml.safe_load(shown.stdout))
    except (ConfigError, yaml.YAMLError) as exc:  # the baseline may predate a params change
        return f"unknown (baseline params do not load: {str(exc)[:200]})"
    return "; ".join(f"{k}={v}" for k, v in sorted(changed.items())) or "none"


class NullRun:
    """Tracking switched off: every call is accepted and dropped."""

    run_id: str | None = None
    seconds = 0.0  # time spent inside tracking calls

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None: ...
    def log_image(self, step: int, key: str, image: np.ndarray) -> None: ...
    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...
    def log_generator(self, G: Any) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...


class MlflowRun(NullRun):
    """An active MLflow run; every call is timed so the overhead of tracking can be reported."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.seconds = 0.0

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        import mlflow

        with self._timed():
            mlflow.log_metrics(metrics, step=step)

    def log_image(self, step: int, key: str, image: np.ndarray) -> None:
        import mlflow

        with self._timed():
            mlflow.log_image(image, key=key, step=step)  # keyed + stepped: the UI compares them across runs

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        import mlflow

        with self._timed():
            mlflow.log_artifact(str(path), artifact_path=folder)

    def log_generator(self, G: Any) -> None:
        import mlflow.pytorch
        import torch

        import ganpipe

        with self._timed():
            # pickle + our package as code: loads anywhere with torch, no tracing of the model needed.
            # Explicit requirements: inferring them would import-scan the environment (slow, and no gain).
            mlflow.pytorch.log_model(G, name="generator", serialization_format="pickle",
                                     code_paths=[str(Path(ganpipe.__file__).parent)],
                                     pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        with self._timed():
            mlflow.set_tags(tags)


def _connect(cfg: TrackingConfig, create: bool = True) -> None:
    """Point mlflow at the store and the experiment; fail fast with a clear message if it is unreachable.
    With create=False a missing experiment is an error that lists the experiments the store has."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = _fail_fast_uri()
    mlflow.set_tracking_uri(uri)
    try:
        if mlflow.get_experiment_by_name(cfg.experiment) is None:
            if not create:
                names = [e.name for e in mlflow.search_experiments()]
                raise TrackingError(f"no MLflow experiment named {cfg.experiment!r} in {uri}; it has {names}")
            artifacts = None if "://" in uri and not uri.startswith("sqlite") else (project_root() / "mlruns").as_uri()
            mlflow.create_experiment(cfg.experiment, artifact_location=artifacts)
        mlflow.set_experiment(cfg.experiment)
    except (MlflowException, OSError, ConnectionError) as exc:
        raise _store_error(exc) from None


def _fail_fast_uri() -> str:
    # a server that is down should fail in seconds, not after mlflow's minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return tracking_uri()


def _store_error(exc: BaseException) -> TrackingError:
    return TrackingError(
        f"cannot use the MLflow tracking store {tracking_uri()} ({type(exc).__name__}: {str(exc)[:300]}). Fix: "
        f"start the server, unset MLFLOW_TRACKING_URI to use the local sqlite store, or set tracking.enabled: false")


@contextlib.contextmanager
def start_run(cfg: TrackingConfig, run_name: str | None = None, run_id: str | None = None,
              params: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> Iterator[NullRun]:
    """Open a new run (or re-open `run_id`); it ends FINISHED, or FAILED / KILLED if the body raises."""
    if not cfg.enabled:
        yield NullRun()
        return
    import mlflow

    from mlflow.exceptions import MlflowException

    _connect(cfg)
    active = None
    if run_id:
        try:
            active = mlflow.start_run(run_id=run_id)  # continue it (a resumed training, or evaluate)
        except MlflowException:
            print(f"note: MLflow run {run_id} is gone from {tracking_uri()}; logging to a new run")
    if active is None:
        active = mlflow.start_run(run_name=run_name)
    run = MlflowRun(active.info.run_id)
    try:
        with run._timed():
            if params:
                mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
            if tags:
                mlflow.set_tags(tags)
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


def find_generator_run(cfg: TrackingConfig, generator_sha256: str) -> str | None:
    """The newest run that trained the generator with this file hash, or None."""
    if not cfg.enabled:
        return None
    import mlflow

    _connect(cfg)
    runs = mlflow.search_runs(
        experiment_names=[cfg.experiment],
        filter_string=f"tags.`{GENERATOR_TAG}` = '{generator_sha256}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def search_runs(cfg: TrackingConfig, filter_string: str = "") -> "Any":
    """The experiment's runs as a pandas DataFrame (mlflow.search_runs: params.*, metrics.*, tags.* columns)."""
    import mlflow

    _connect(cfg, create=False)
    return mlflow.search_runs(experiment_names=[cfg.experiment], filter_string=filter_string,
                              order_by=["attributes.start_time DESC"])


def select_runs(cfg: TrackingConfig, tags: dict[str, str] | None = None, run_ids: list[str] | None = None) -> "Any":
    """Runs of the experiment with all of `tags` (and among `run_ids`, when given); an unknown id is an error."""
    clauses = [f"tags.`{k}` = '{v}'" for k, v in (tags or {}).items()]
    if run_ids:
        clauses.append("attributes.run_id IN (" + ", ".join(f"'{r}'" for r in run_ids) + ")")
    runs = search_runs(cfg, " AND ".join(clauses))
    missing = sorted(set(run_ids or []) - set(runs["run_id"] if not runs.empty else []))
    if missing:
        raise TrackingError(f"no run {missing[0]!r} in experiment {cfg.experiment!r} of {tracking_uri()} "
                            f"(with tags {tags or {}}); list runs with `mlflow runs list`")
    return runs


def get_run(run_id: str) -> dict[str, Any]:
    """One run by id, as plain data: {'run_id', 'name', 'status', 'experiment', 'params', 'tags', 'metrics'}
    (metrics: the value at the highest step). An unknown id is a TrackingError."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_fail_fast_uri())
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise _store_error(exc) from None
        raise TrackingError(f"no MLflow run {run_id!r} in {tracking_uri()}; find run ids with `ganpipe compare` "
                            f"or in the MLflow UI (set MLFLOW_TRACKING_URI if the run is in another store)") from None
    return {"run_id": run.info.run_id, "name": run.info.run_name, "status": run.info.status,
            "experiment": client.get_experiment(run.info.experiment_id).name,
            "params": dict(run.data.params), "tags": dict(run.data.tags), "metrics": dict(run.data.metrics)}


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of one metric, by step."""
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri()).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in history)


def copy_scores_from_twin(cfg: TrackingConfig, run_id: str, generator_sha256: str) -> str | None:
    """Give `run_id` the eval scores of an earlier finished run that trained a byte-identical generator.

    Why: for an identical generator DVC restores the evaluate stage from its run cache instead of running it,
    so nothing would log scores to this run. Copied scores are exactly what evaluate computes when its other
    inputs are unchanged; when they did change, evaluate does run and logs over them (same step, later time).
    Returns the twin's run id, or None.
    """
    if not cfg.enabled:
        return None
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    _connect(cfg)
    twins = mlflow.search_runs(experiment_names=[cfg.experiment], output_format="list",
                               filter_string=f"tags.`{GENERATOR_TAG}` = '{generator_sha256}' "
                                             f"AND attributes.status = 'FINISHED'",
                               order_by=["attributes.start_time DESC"])
    for twin in twins:
        scores = {k: v for k, v in twin.data.metrics.items() if k.startswith(("eval/", "eval_real/"))}
        if twin.info.run_id != run_id and scores:
            client = MlflowClient(tracking_uri())
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in scores.items()])
            client.set_tag(run_id, "eval.copied_from_run", twin.info.run_id)
            if "eval.classifier_sha256" in twin.data.tags:  # which classifier made those scores
                client.set_tag(run_id, "eval.classifier_sha256", twin.data.tags["eval.classifier_sha256"])
            return twin.info.run_id
    return None
