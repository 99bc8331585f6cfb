"""The MLflow adapter (with run.py, failures.py, migrate.py and generator_model.py, the only mlflow importers):
opens runs (run.py logs to them) and finds runs again.

Where the store is: store.py.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Iterator

from ganpipe.console import note
from ganpipe.errors import ConfigError, TrackingError
from ganpipe.params.config import TrackingConfig
from ganpipe.track.failures import retry_budget, retrying, store_error
from ganpipe.track.run import MlflowRun, NullRun
from ganpipe.track.store import project_root, tracking_uri  # noqa: F401  (callers use tracking.project_root)

# MLflow 3 opens an experiment without a kind in its GenAI view (traces, prompts); this kind opens the
# "Model training" view, where runs, their metrics and image charts are.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def _connect(cfg: TrackingConfig, create: bool = True) -> str:
    """Point mlflow at the store and the experiment (created, and given its kind, when missing); fail fast with
    a clear message if the store is unreachable. With create=False a missing experiment is an error that lists
    the experiments the store has. Returns the experiment id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = _fail_fast_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(cfg.experiment)
        if experiment is None:
            if not create:
                names = [e.name for e in mlflow.search_experiments()]
                raise TrackingError(f"no MLflow experiment named {cfg.experiment!r} in {uri}; it has {names}")
            artifacts = None if "://" in uri and not uri.startswith("sqlite") else (project_root() / "mlruns").as_uri()
            try:
                mlflow.create_experiment(cfg.experiment, artifact_location=artifacts, tags=dict([EXPERIMENT_KIND]))
            except MlflowException as exc:  # a teammate's first run made it a moment ago: use theirs
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            experiment = mlflow.get_experiment_by_name(cfg.experiment)
        elif experiment.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:  # made before, or by someone else
            mlflow.MlflowClient(uri).set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
    except (MlflowException, OSError, ConnectionError) as exc:
        raise store_error(exc) from None
    return experiment.experiment_id


def _fail_fast_uri() -> str:
    # a server that is down should fail in seconds, not after mlflow's minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return tracking_uri()


def connect_uri(uri: str) -> None:
    """Reach the store at `uri` now, failing fast (down, or refusing the login)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    _fail_fast_uri()
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except (MlflowException, OSError, ConnectionError) as exc:
        raise store_error(exc) from None


def connect(cfg: TrackingConfig) -> None:
    """Reach the store now (a stage calls this before its expensive work, so a store that is down fails fast)."""
    if cfg.enabled:
        _connect(cfg)


@contextlib.contextmanager
def start_run(cfg: TrackingConfig, run_name: str | None = None, run_id: str | None = None,
              params: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> Iterator[NullRun]:
    """Open a new run (or continue `run_id`, a resumed training); it ends FINISHED, KILLED after Ctrl-C or
    SIGTERM, FAILED after any other error. `params` are strings, as config.as_logged makes them. Opening fails
    fast; once open, every call rides out short outages of the store (failures.py)."""
    if not cfg.enabled:
        yield NullRun()
        return
    import mlflow
    from mlflow.exceptions import MlflowException

    _connect(cfg)
    retry_budget()  # a bad $GANPIPE_TRACKING_RETRY_S is refused before the run opens
    active = None
    if run_id:
        try:
            active = mlflow.start_run(run_id=run_id)
        except MlflowException:
            note(f"note: MLflow run {run_id} is gone from {tracking_uri()}; logging to a new run")
    if active is None:
        try:
            active = mlflow.start_run(run_name=run_name)
        except (MlflowException, OSError, ConnectionError) as exc:  # a login that may read but not write: 403
            raise store_error(exc) from None
    continued = run_id == active.info.run_id
    try:
        run = MlflowRun(active.info.run_id, continued=continued)
        params, tags = dict(params or {}), dict(tags or {})
        if continued:  # MLflow params are write-once, so a resume on another placement (train.processes,
            logged = active.data.params  # ...) keeps the first values and tags the new ones
            tags.update({f"resumed.{k}": v for k, v in params.items() if k in logged and logged[k] != v})
            params = {k: v for k, v in params.items() if k not in logged}
        if params:
            from mlflow.entities import Param

            rows = [Param(k, v) for k, v in params.items()]
            run._call("the params", lambda: run.client.log_batch(run.run_id, params=rows))
        if tags:
            run.set_tags(tags)
        yield run
    except KeyboardInterrupt:
        MlflowRun.end_by_id(active.info.run_id, "KILLED")
        raise
    except BaseException:
        MlflowRun.end_by_id(active.info.run_id, "FAILED")
        raise
    run.end("FINISHED")


def mark_failed(cfg: TrackingConfig, run_id: str | None) -> None:
    """End a run FAILED from outside it (a training whose worker crashed): one try, noted if it fails."""
    if cfg.enabled and run_id:
        MlflowRun.end_by_id(run_id, "FAILED", _fail_fast_uri())


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run as plain data (metrics: the value at the highest step)."""

    run_id: str
    name: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]


def record(run: Any) -> RunRecord:
    return RunRecord(run.info.run_id, run.info.run_name, run.info.status, dict(run.data.params),
                     dict(run.data.tags), dict(run.data.metrics))


def tag_clause(key: str, value: str) -> str:
    """An MLflow filter clause `tags.key = value` for any key and value it can express; ConfigError otherwise
    (MLflow's filter language has no escape: a value is quoted with the quote character it does not hold)."""
    if "`" in key or not key:
        raise ConfigError(f"cannot filter MLflow runs by tag {key!r}: a tag name must not be empty or hold a backtick")
    quote = "'" if "'" not in value else '"'
    if quote in value:
        raise ConfigError(f"cannot filter MLflow runs by {key}={value!r}: MLflow's filter language cannot hold a "
                          f"value with both ' and \"")
    return f"tags.`{key}` = {quote}{value}{quote}"


def find_runs(cfg: TrackingConfig, tags: dict[str, str], finished: bool = True) -> list[RunRecord]:
    """Runs of the experiment with all of `tags` (finished ones only, by default), newest first."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    experiment_id = _connect(cfg)
    clauses = [tag_clause(k, v) for k, v in tags.items()] + ["attributes.status = 'FINISHED'"] * finished
    try:
        runs = MlflowClient(tracking_uri()).search_runs([experiment_id], " AND ".join(clauses), max_results=1000,
                                                        order_by=["attributes.start_time DESC"])
    except (MlflowException, OSError, ConnectionError) as exc:
        raise store_error(exc) from None
    return [record(r) for r in runs]


def log_to_run(run_id: str, metrics: dict[str, float], files: list[tuple[Path, str]], tags: dict[str, str]) -> None:
    """Add files (path, artifact folder), then metrics (step 0), then tags to an existing run through the client
    API: the run is never re-opened, so its status (a FINISHED training) cannot change, whatever fails here.
    In that order, a run that has the metrics also has the files. Each call rides out short outages (files
    overwrite, metrics keep one timestamp: a retry adds nothing)."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client, budget = MlflowClient(tracking_uri()), retry_budget()
    now = int(time.time() * 1000)
    for path, folder in files:
        retrying(path.name, lambda: client.log_artifact(run_id, str(path), folder), budget)
    rows = [Metric(k, v, now, 0) for k, v in metrics.items()]
    retrying("the scores", lambda: client.log_batch(run_id, metrics=rows), budget)
    retrying("tags", lambda: client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()]), budget)


def search_runs(cfg: TrackingConfig, filter_string: str = "") -> "Any":
    """The experiment's runs as a pandas DataFrame (mlflow.search_runs: params.*, metrics.*, tags.* columns)."""
    import mlflow

    _connect(cfg, create=False)
    return mlflow.search_runs(experiment_names=[cfg.experiment], filter_string=filter_string,
                              order_by=["attributes.start_time DESC"])


def select_runs(cfg: TrackingConfig, tags: dict[str, str] | None = None, run_ids: list[str] | None = None) -> "Any":
    """Runs of the experiment with all of `tags` (and among `run_ids`, when given); an unknown id is an error."""
    clauses = [tag_clause(k, v) for k, v in (tags or {}).items()]
    bad = [r for r in run_ids or [] if not (len(r) == 32 and all(c in "0123456789abcdef" for c in r))]
    if bad:
        raise ConfigError(f"{bad[0]!r} is not an MLflow run id (32 hex digits); `ganpipe compare` lists them")
    if run_ids:
        clauses.append("attributes.run_id IN (" + ", ".join(f"'{r}'" for r in run_ids) + ")")
    runs = search_runs(cfg, " AND ".join(clauses))
    missing = sorted(set(run_ids or []) - set(runs["run_id"] if not runs.empty else []))
    if missing:
        raise TrackingError(f"no run {missing[0]!r} in experiment {cfg.experiment!r} of {tracking_uri()} "
                            f"(with tags {tags or {}}); list runs with `ganpipe compare`")
    return runs


def get_run(run_id: str) -> dict[str, Any]:
    """One run by id, as plain data: {'run_id', 'name', 'status', 'experiment', 'params', 'tags', 'metrics'}
    (metrics: the value at the highest step). An unknown id is a TrackingError."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_fail_fast_uri())
    try:
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.info.experiment_id).name
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise store_error(exc) from None
        raise TrackingError(f"no MLflow run {run_id!r} in {tracking_uri()}; find run ids with `ganpipe compare` "
                            f"or in the MLflow UI (set MLFLOW_TRACKING_URI if the run is in another store)") from None
    except (OSError, ConnectionError) as exc:
        raise store_error(exc) from None
    return {**dataclasses.asdict(record(run)), "experiment": experiment}


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of one metric, by step."""
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri()).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in history)
