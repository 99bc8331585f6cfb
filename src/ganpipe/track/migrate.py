"""`ganpipe team import`: copy a local MLflow history (sqlite:///mlflow.db with its mlruns/ artifacts) onto
another tracking store, usually the team server: experiments, runs with their status and times, params, tags,
every logged value of every metric (the whole history, each step), all artifacts (image grids, reports), and
the runs' logged models with their files. Runs keep their names; each gets a new id on the server.

Safe to run again, and after an interruption: a run is tagged with its source id when created and marked
done last, so a finished copy is skipped and a half-made one is deleted and made again. Tags that name
another run (an evaluation's training run, a parent run) are pointed at that run's copy.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from ganpipe.errors import TrackingError
from ganpipe.keys import EVALUATES_TAG
from ganpipe.track.failures import retry_budget, retrying, store_error
from ganpipe.track.logged_model import find_or_create

SOURCE_TAG = "ganpipe.imported_from"  # the run id in the source store
DONE_TAG = "ganpipe.import_complete"
LINK_TAGS = (EVALUATES_TAG, "mlflow.parentRunId")  # tags whose value is another run's id
BATCH = 1000  # MLflow's limit of metrics per log_batch (params: 100, tags: 100)


@dataclasses.dataclass
class Summary:
    copied: int = 0
    skipped: int = 0   # already on the target, complete
    redone: int = 0    # a half-made copy from an interrupted import, deleted and copied again
    metrics: int = 0   # metric values copied
    artifacts: int = 0  # files copied

    def line(self, source: str, target: str) -> str:
        return (f"imported {self.copied} run(s) from {source} into {target} ({self.metrics} metric values, "
                f"{self.artifacts} artifact files); {self.skipped} already there"
                + (f"; {self.redone} half-imported run(s) made again" if self.redone else ""))


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    from mlflow.entities import ViewType

    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  page_token=token, order_by=["attributes.start_time ASC"])
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def copy_run(src: Any, dst: Any, run: Any, experiment_id: str, call: Callable) -> tuple[str, int, int]:
    """One run onto the target; returns (new id, metric values, artifact files)."""
    from mlflow.entities import Metric, Param, RunTag

    info = run.info
    tags = {**run.data.tags, SOURCE_TAG: info.run_id, "mlflow.runName": info.run_name}
    tags.pop(DONE_TAG, None)
    new = call(f"run {info.run_name}", lambda: dst.create_run(experiment_id, start_time=info.start_time,
                                                              tags={SOURCE_TAG: info.run_id}, run_name=info.run_name))
    new_id = new.info.run_id
    for rows in _chunks([Param(k, v) for k, v in run.data.params.items()], 100):
        call("params", lambda: dst.log_batch(new_id, params=rows))
    for rows in _chunks([RunTag(k, v) for k, v in tags.items()], 100):
        call("tags", lambda: dst.log_batch(new_id, tags=rows))
    values = [Metric(m.key, m.value, m.timestamp, m.step) for key in run.data.metrics
              for m in call(f"metric {key}", lambda: src.get_metric_history(info.run_id, key))]
    for rows in _chunks(values, BATCH):
        call("metrics", lambda: dst.log_batch(new_id, metrics=rows))
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(src.download_artifacts(info.run_id, "", tmp))
        files = _files(local)
        if files:
            call("artifacts", lambda: dst.log_artifacts(new_id, str(local)))
    files += copy_models(src, dst, run, new_id, experiment_id, call)
    call("status", lambda: dst.set_terminated(new_id, info.status, end_time=info.end_time))
    return new_id, len(values), files


def copy_models(src: Any, dst: Any, run: Any, new_id: str, experiment_id: str, call: Callable) -> int:
    """The run's logged models (MLflow 3 keeps them beside the run, not among its artifacts) with their files;
    returns the number of files. Their MLmodel files keep naming the source ids."""
    from mlflow.artifacts import download_artifacts
    from mlflow.entities import LoggedModelStatus

    files = 0
    models = call("models", lambda: src.search_logged_models(
        [run.info.experiment_id], f"source_run_id = '{run.info.run_id}'"))
    for model in models:
        made = find_or_create(dst, call, experiment_id, new_id, model.name, dict(model.params), dict(model.tags),
                              model.model_type)  # a retried create makes one copy, not two
        with tempfile.TemporaryDirectory() as tmp:
            local = download_artifacts(artifact_uri=model.artifact_location, dst_path=tmp,
                                       tracking_uri=src.tracking_uri)
            files += _files(Path(local))
            call("model files", lambda: dst.log_model_artifacts(made.model_id, local))
        call("a model", lambda: dst.finalize_logged_model(made.model_id, LoggedModelStatus.READY))
    return files


def migrate(source_uri: str, target_uri: str, experiments: list[str] | None = None) -> Summary:
    """Copy every run of the source's experiments (or of the named ones) onto the target store."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if source_uri == target_uri:
        raise TrackingError(f"the source and the target are the same store ({source_uri}); set MLFLOW_TRACKING_URI "
                            f"to the server to import into")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one summary line, not a bar per run
    budget = retry_budget()
    call = lambda what, fn: retrying(what, fn, budget)  # noqa: E731
    src, dst, summary = MlflowClient(source_uri), MlflowClient(target_uri), Summary()
    try:
        found = src.search_experiments()
    except MlflowException as exc:
        raise store_error(exc) from None
    names = [e.name for e in found]
    missing = sorted(set(experiments or []) - set(names))
    if missing:
        raise TrackingError(f"no experiment {missing[0]!r} in {source_uri}; it has {names}")
    for experiment in found:
        if experiments and experiment.name not in experiments:
            continue
        runs = _all_runs(src, experiment.experiment_id)
        if not runs and experiment.name == "Default":
            continue  # every store has it; an empty one is nothing to move
        target = call("the experiment", lambda: dst.get_experiment_by_name(experiment.name))
        target_id = target.experiment_id if target else call("the experiment", lambda: dst.create_experiment(
            experiment.name, tags={k: v for k, v in experiment.tags.items() if not k.startswith("mlflow.note")}))
        ids: dict[str, str] = {}
        for old in _all_runs(dst, target_id):
            source = old.data.tags.get(SOURCE_TAG)
            if source and old.data.tags.get(DONE_TAG) == "true":
                ids[source] = old.info.run_id
            elif source:  # an import that stopped in this run: made again below
                call("a half-made copy", lambda: dst.delete_run(old.info.run_id))
                summary.redone += 1
        made = []
        for run in runs:
            if run.info.run_id in ids:
                summary.skipped += 1
                continue
            new_id, values, files = copy_run(src, dst, run, target_id, call)
            ids[run.info.run_id] = new_id
            made.append((run, new_id))
            summary.copied, summary.metrics, summary.artifacts = \
                summary.copied + 1, summary.metrics + values, summary.artifacts + files
        for run, new_id in made:  # links to other runs, now that every run has its copy; then done
            links = {k: ids[v] for k in LINK_TAGS if (v := run.data.tags.get(k)) in ids}
            call("tags", lambda: dst.set_tag(new_id, DONE_TAG, "true") if not links else
                 [dst.set_tag(new_id, k, v) for k, v in {**links, DONE_TAG: "true"}.items()])
    return summary
