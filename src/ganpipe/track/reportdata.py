"""What `ganpipe report` shows, read from MLflow: the run (or the runs of a config), their loss histories, the
per-epoch sample grids, the closest-pairs picture of copy detection, params, scores and provenance tags."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ganpipe.errors import TrackingError
from ganpipe.keys import CONFIG_TAG, EVALUATES_TAG, KIND_TAG, SCORE_PREFIXES
from ganpipe.params.config import TrackingConfig
from ganpipe.track.generators import training_run
from ganpipe.track.run import image_files
from ganpipe.track.store import tracking_uri
from ganpipe.track.tracking import RunRecord, find_runs

CURVES = ("loss/d", "loss/g", "d/real", "d/fake")
GRID_KEY = "samples"  # the per-epoch grid the training loop logs
PAIRS_FILE = "closest_pairs.png"  # paths.copy_grid's name, logged under eval/


@dataclass
class RunReport:
    run: RunRecord
    scores: dict[str, float]                    # eval/* and eval_real/* (from an evaluation run if it holds them)
    curves: dict[str, list[tuple[int, float]]]  # key -> (epoch, value)
    grids: list[tuple[int, bytes]] = field(default_factory=list)  # (epoch, PNG bytes)
    pairs: bytes | None = None                  # the closest-pairs PNG, when copy detection ran


def runs_for(cfg: TrackingConfig, target: str) -> tuple[str, list[RunRecord]]:
    """(what the page is about, its training runs): one run for a run id or experiment name, or every run of a
    config (the ganpipe.config tag; a re-made experiment name counts once, its newest run), or every complete
    trial of a `ganpipe tune` study (the tune.study tag)."""
    try:
        run = training_run(cfg, target)
        return f"run {run.name}", [run]
    except TrackingError as exc:
        if "no finished training run named" not in str(exc):
            raise
    group = [r for r in find_runs(cfg, {CONFIG_TAG: target}) if r.tags.get(KIND_TAG, "training") == "training"]
    what = "config"
    if not group:  # a `ganpipe tune` study: its complete trials (pruned ones are no result)
        group, what = find_runs(cfg, {"tune.study": target, "tune.state": "complete", KIND_TAG: "training"}), "study"
    newest: dict[str, RunRecord] = {}
    for run in group:  # find_runs lists the newest first
        newest.setdefault(run.name, run)
    if not newest:
        raise TrackingError(f"no finished training run, experiment, config or study named {target!r} in experiment "
                            f"{cfg.experiment!r} of {tracking_uri()}; `ganpipe compare` lists runs, "
                            f"`ganpipe compare --group-by config` the configs")
    return f"{what} {target} ({len(newest)} runs)", sorted(newest.values(), key=lambda r: r.name)


def collect(cfg: TrackingConfig, run: RunRecord, max_grids: int = 8) -> RunReport:
    import os

    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a dozen small files: no bars

    client = MlflowClient(tracking_uri())
    curves = {k: sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, k)) for k in CURVES}
    scored, pairs_run = run, run.run_id
    if not any(k.startswith(SCORE_PREFIXES) for k in run.metrics):  # its scores landed on an evaluation run
        evaluations = find_runs(cfg, {EVALUATES_TAG: run.run_id})
        if evaluations:
            scored, pairs_run = evaluations[0], evaluations[0].run_id
    report = RunReport(run, {k: v for k, v in scored.metrics.items() if k.startswith(SCORE_PREFIXES)},
                       {k: v for k, v in curves.items() if v})
    with tempfile.TemporaryDirectory() as tmp:
        found = image_files([Path(a.path).name for a in client.list_artifacts(run.run_id, "images")])
        steps = sorted(step for (key, step), (_, complete) in found.items() if key == GRID_KEY and complete)
        for step in _spread(steps, max_grids):
            base = found[(GRID_KEY, step)][0]
            local = client.download_artifacts(run.run_id, f"images/{base}.png", tmp)
            report.grids.append((step, Path(local).read_bytes()))
        if any(Path(a.path).name == PAIRS_FILE for a in client.list_artifacts(pairs_run, "eval")):
            report.pairs = Path(client.download_artifacts(pairs_run, f"eval/{PAIRS_FILE}", tmp)).read_bytes()
    return report


def _spread(steps: list[int], most: int) -> list[int]:
    """At most `most` of the steps, evenly spread, always with the first and the last."""
    if len(steps) <= most:
        return steps
    picks = {steps[round(i * (len(steps) - 1) / (most - 1))] for i in range(most)}
    return sorted(picks)
