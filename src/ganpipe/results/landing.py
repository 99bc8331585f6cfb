"""Which MLflow run an evaluation's scores land on, decided by its provenance (eval/identity.py):

1. the newest finished run that trained this generator, when it logged exactly these inputs and holds no scores
   yet (the usual case: `dvc repro` trains, samples and evaluates under one params.yaml; and a byte-identical
   retrain, which gets its own computed scores);
2. nowhere new, when a finished run already holds these very scores under this provenance;
3. otherwise a new evaluation run. It logs its own params (the training run's, with this evaluation's sample,
   evaluate and classifier params) and links to the training run: tag `ganpipe.evaluates_run`, and
   `mlflow.parentRunId`, so the MLflow UI nests it under the training run. Tag `eval.reason` says why.

No run's scores or artifacts are written over, and a training run is written only through the client API, so
its status (FINISHED) can never change here.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ganpipe.eval.identity import Provenance, mismatch, scores_of
from ganpipe.keys import (BEST_GENERATOR_TAG, EVALUATES_TAG, GENERATOR_TAG, KIND_TAG, PRECISION_TAG, PROVENANCE_TAG,
                          SAMPLES_TAG)
from ganpipe.params.config import TrackingConfig
from ganpipe.track import tracking
from ganpipe.track.tracking import RunRecord

LINKED_TAGS = ("data.name", "env.torch", "env.cpu", "env.cpu_isa", "env.gpu", "env.bf16",  # the training run's,
               "train.device", PRECISION_TAG)  # copied over


@dataclasses.dataclass(frozen=True)
class Decision:
    action: str  # "exists" (already logged), "land" (on the training run) or "new" (an evaluation run)
    run_id: str | None  # the run that holds or gets the scores; None until a new run is made
    training_run: RunRecord | None  # the newest finished run that trained this generator, if the store has one
    reason: str


def decide(prov: Provenance, scores: dict[str, float], runs: list[RunRecord]) -> Decision:
    """Where scores with provenance `prov` go, given the finished runs of this generator (or these samples),
    newest first. Pure: no store is touched."""
    training = [r for r in runs if r.tags.get(KIND_TAG, "training") == "training"]
    newest = training[0] if training else None
    for run in training:  # first: a training run still without scores (a byte-identical retrain gets its own)
        if mismatch(prov, run.params, run.tags, run.metrics) is None:
            return Decision("land", run.run_id, run, "it trained this generator under these very params")
    for run in runs:
        if run.tags.get(PROVENANCE_TAG) == prov.key and scores_of(run.metrics) == scores:
            return Decision("exists", run.run_id, newest, f"run {run.run_id} already holds these very scores")
    if newest is None:
        return Decision("new", None, None, "no finished run in this experiment trained this generator")
    return Decision("new", None, newest, f"not on training run {newest.run_id}: "
                                         f"{mismatch(prov, newest.params, newest.tags, newest.metrics)}")


def new_run_params(prov: Provenance, training: RunRecord | None) -> dict[str, str]:
    """An evaluation run's params: the training run's, with the params this evaluation used."""
    return {**(training.params if training else {}), **prov.params}


def land(cfg: TrackingConfig, prov: Provenance, scores: dict[str, float], extra: dict[str, float],
         files: list[tuple[Path, str]], tags: dict[str, str],
         run_name: Callable[[RunRecord | None], str]) -> Decision | None:
    """Log `scores` (eval/*, eval_real/*), `extra` metrics and `files` where `decide` says; `tags` (git, DVC)
    go on a new evaluation run, named run_name(training run). Returns the decision with the run id filled in
    (None when tracking is off)."""
    if not cfg.enabled:
        return None
    if prov.generator_sha256:  # the last generator of a training, or its best-scored one (sample.from)
        found = (tracking.find_runs(cfg, {GENERATOR_TAG: prov.generator_sha256}) or
                 tracking.find_runs(cfg, {BEST_GENERATOR_TAG: prov.generator_sha256}))
    else:
        found = tracking.find_runs(cfg, {SAMPLES_TAG: prov.samples_sha256})
    decision = decide(prov, scores, found)
    if decision.action == "exists":
        return decision
    if decision.action == "land":
        # claim the run with the provenance tag first, then check the claim held: of two evaluations landing
        # at once, the one that reads back another's key makes its own run instead
        tracking.log_to_run(decision.run_id, {}, [], {PROVENANCE_TAG: prov.key})
        if tracking.get_run(decision.run_id)["tags"].get(PROVENANCE_TAG) == prov.key:
            # the training run keeps its own generator tags (it wrote the last and the best; sample.from says which)
            kept = {k: v for k, v in prov.tags().items() if k != GENERATOR_TAG}
            tracking.log_to_run(decision.run_id, {**scores, **extra}, files, kept)
            return decision
        decision = Decision("new", None, decision.training_run, "another evaluation claimed the training run")
    training = decision.training_run
    run_tags = {**tags, **prov.tags(), KIND_TAG: "evaluation", "eval.reason": decision.reason}
    if training is not None:
        run_tags |= {k: training.tags[k] for k in LINKED_TAGS if k in training.tags}
        run_tags |= {EVALUATES_TAG: training.run_id, "mlflow.parentRunId": training.run_id}
    with tracking.start_run(cfg, run_name=run_name(training), params=new_run_params(prov, training), tags=run_tags) as run:
        run.log_metrics(0, {**scores, **extra})
        for path, folder in files:
            run.log_artifact(path, folder)
    return dataclasses.replace(decision, run_id=run.run_id)


def describe(decision: Decision | None) -> str:
    """One line for the stage's output: where the scores went, and why."""
    if decision is None:
        return "tracking is off: scores are in the metrics file only"
    where = {"exists": "already logged in MLflow run", "land": "logged to training run",
             "new": "logged to new evaluation run"}[decision.action]
    link = (f", linked to training run {decision.training_run.run_id}"
            if decision.action == "new" and decision.training_run is not None else "")
    return f"scores {where} {decision.run_id}{link} ({decision.reason})"
