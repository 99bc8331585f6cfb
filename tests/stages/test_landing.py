"""Every score belongs to its run: which MLflow run an evaluation's scores land on (track/landing.py), first as a
pure decision over plain run records, then with the real stages run in-process on tiny data."""
from __future__ import annotations

import json

import pytest

from ganpipe.eval.identity import Provenance, mismatch
from ganpipe.keys import EVALUATES_TAG, GENERATOR_TAG, KIND_TAG, PROVENANCE_TAG
from ganpipe.results.landing import decide, new_run_params
from ganpipe.track.tracking import RunRecord

from helpers import runs, stage, write_params

PARAMS = {"sample.n": "200", "evaluate.pr_k": "3", "classifier.epochs": "1"}
PROV = Provenance(generator_sha256="g" * 64, samples_sha256=None, data_sha256="d" * 64,
                  classifier_sha256="c" * 64, params=PARAMS, features="classifier", code_sha256="e" * 64)
SCORES = {"eval/fid": 20.0, "eval_real/fid": 9.0}


def training(run_id="t1", params=None, tags=None, metrics=None) -> RunRecord:
    return RunRecord(run_id, f"name-{run_id}", "FINISHED", {**PARAMS, "train.epochs": "2", **(params or {})},
                     {GENERATOR_TAG: "g" * 64, "data.sha256": "d" * 64, **(tags or {})}, metrics or {})


def test_scores_land_on_the_training_run_only_when_its_logged_inputs_are_theirs():
    assert decide(PROV, SCORES, [training()]).action == "land"
    other_n = decide(PROV, SCORES, [training(params={"sample.n": "2000"})])
    assert other_n.action == "new" and other_n.training_run.run_id == "t1"
    assert "it logged sample.n=2000, these scores used sample.n=200" in other_n.reason
    other_data = decide(PROV, SCORES, [training(tags={"data.sha256": "x" * 64})])
    assert other_data.action == "new" and "other data" in other_data.reason
    assert decide(PROV, SCORES, []).reason == "no finished run in this experiment trained this generator"


def test_scores_already_held_are_never_written_over_nor_duplicated():
    scored = training(tags={PROVENANCE_TAG: PROV.key}, metrics={**SCORES, "loss/d": 1.0})
    assert decide(PROV, SCORES, [scored]).action == "exists"
    # the same provenance, other numbers (another machine kind): a new run, the old numbers stay
    assert decide(PROV, {**SCORES, "eval/fid": 20.5}, [scored]).action == "new"
    legacy = training(metrics=SCORES)  # scored before provenance was recorded: never overwritten
    assert decide(PROV, SCORES, [legacy]).action == "new" and "already holds scores" in decide(PROV, SCORES, [legacy]).reason
    other = training(tags={PROVENANCE_TAG: "o" * 64}, metrics={"eval/fid": 30.0})
    assert mismatch(PROV, other.params, other.tags, other.metrics) == "it already holds the scores of another evaluation"
    evaluation = RunRecord("e1", "eval-x", "FINISHED", PARAMS, {KIND_TAG: "evaluation", PROVENANCE_TAG: PROV.key},
                           dict(SCORES))
    assert decide(PROV, SCORES, [evaluation, other]).run_id == "e1"  # an evaluation run holding them: reused


def test_a_byte_identical_retrain_gets_its_own_scores_not_a_copy():
    older = training("t1", tags={PROVENANCE_TAG: PROV.key}, metrics=SCORES)
    newer = training("t2")  # newest first, as the store returns them
    landed = decide(PROV, SCORES, [newer, older])
    assert (landed.action, landed.run_id) == ("land", "t2")
    scored_newer = training("t2", tags={PROVENANCE_TAG: PROV.key}, metrics=SCORES)
    assert decide(PROV, SCORES, [scored_newer, older]).action == "exists"


def test_an_evaluation_run_logs_the_training_params_with_its_own():
    params = new_run_params(PROV, training(params={"sample.n": "2000"}))
    assert params["sample.n"] == "200" and params["train.epochs"] == "2"
    assert new_run_params(PROV, None) == PARAMS


def scores_of(run):
    return {k: v for k, v in run.data.metrics.items() if k.startswith(("eval/", "eval_real/"))}


def artifact_bytes(workdir, run, path="eval/eval.json"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    local = client.download_artifacts(run.info.run_id, path, str(workdir / "dl" / run.info.run_id))
    return open(local, "rb").read()


def test_changed_sample_params_give_a_linked_evaluation_run_and_leave_the_training_run_alone(workdir, capsys):
    for name in ("prepare", "train_classifier", "train", "sample", "evaluate"):
        assert stage(name)([]) == 0, name
    [trained] = runs(workdir)
    assert trained.data.tags[KIND_TAG] == "training" and len(trained.data.tags[PROVENANCE_TAG]) == 64
    result = json.loads((workdir / "metrics" / "eval.json").read_text())
    assert result["protocol"]["provenance"] == trained.data.tags[PROVENANCE_TAG]
    assert scores_of(trained)["eval/fid"] == result["fake"]["fid"]
    before = (scores_of(trained), artifact_bytes(workdir, trained))

    write_params(workdir, sample={"n": 300})  # as `dvc exp run -S sample.n=300` would: sample and evaluate rerun
    capsys.readouterr()
    assert stage("sample")([]) == 0 and stage("evaluate")([]) == 0
    assert f"linked to training run {trained.info.run_id}" in capsys.readouterr().out
    [again] = [r for r in runs(workdir) if r.info.run_id == trained.info.run_id]
    assert (scores_of(again), artifact_bytes(workdir, again)) == before  # untouched, byte for byte
    [evaluation] = [r for r in runs(workdir) if r.info.run_id != trained.info.run_id]
    tags = evaluation.data.tags
    assert tags[KIND_TAG] == "evaluation" and tags[EVALUATES_TAG] == trained.info.run_id
    assert tags["mlflow.parentRunId"] == trained.info.run_id  # the UI nests it under the training run
    assert "it logged sample.n=200, these scores used sample.n=300" in tags["eval.reason"]
    assert evaluation.data.params["sample.n"] == "300" and evaluation.data.params["train.epochs"] == "2"
    assert json.loads(artifact_bytes(workdir, evaluation))["protocol"]["n_fake"] == 300
    assert scores_of(evaluation)["eval/fid"] == json.loads((workdir / "metrics" / "eval.json").read_text())["fake"]["fid"]
    assert tags["env.cpu"] == trained.data.tags["env.cpu"] and tags[GENERATOR_TAG] == trained.data.tags[GENERATOR_TAG]

    capsys.readouterr()
    assert stage("evaluate")([]) == 0  # the same evaluation again (dvc repro --force): nothing new is logged
    assert f"already logged in MLflow run {evaluation.info.run_id}" in capsys.readouterr().out
    assert len(runs(workdir)) == 2


def test_a_byte_identical_retrain_is_scored_on_its_own_run(workdir, capsys):
    for name in ("prepare", "train_classifier", "train", "sample", "evaluate"):
        assert stage(name)([]) == 0, name
    for name in ("train", "sample", "evaluate"):  # the same generator bytes, a new training run, scored anew
        assert stage(name)([]) == 0, name
    first, second = sorted(runs(workdir), key=lambda r: r.info.start_time)
    assert first.data.tags[GENERATOR_TAG] == second.data.tags[GENERATOR_TAG]
    assert scores_of(second) == scores_of(first) and "eval.copied_from_run" not in second.data.tags
    assert second.data.tags[PROVENANCE_TAG] == first.data.tags[PROVENANCE_TAG]
    write_params(workdir, evaluate={"pr_k": 4})  # scores under params neither training run logged
    capsys.readouterr()
    assert stage("evaluate")([]) == 0
    assert f"linked to training run {second.info.run_id}" in capsys.readouterr().out  # the newest one
    assert len(runs(workdir)) == 3
    assert {r.info.run_id: scores_of(r) for r in runs(workdir) if r.info.run_id != first.info.run_id}[
        second.info.run_id] == scores_of(first)  # both training runs keep their scores


def test_a_store_failing_while_scores_are_logged_leaves_the_training_run_finished(workdir, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    for name in ("prepare", "train_classifier", "train", "sample"):
        assert stage(name)([]) == 0, name

    def unreachable(*args, **kwargs):
        raise OSError("connection reset by the artifact store")

    with monkeypatch.context() as patched:
        patched.setattr(MlflowClient, "log_artifact", unreachable)
        assert stage("evaluate")([]) == 1
    err = capsys.readouterr().err
    assert "cannot use the MLflow tracking store" in err and "connection reset" in err and "Traceback" not in err
    [trained] = runs(workdir)
    assert trained.info.status == "FINISHED" and not scores_of(trained)
    assert stage("evaluate")([]) == 0  # once the store is back, the same evaluation completes the landing
    [trained] = runs(workdir)
    assert trained.info.status == "FINISHED" and scores_of(trained)
    assert artifact_bytes(workdir, trained) == (workdir / "metrics" / "eval.json").read_bytes()


@pytest.mark.parametrize("stage_name", ["evaluate"])
def test_a_corrupt_samples_file_is_named_with_its_fix(workdir, capsys, stage_name):
    (workdir / "samples").mkdir()
    (workdir / "samples" / "samples.safetensors").write_bytes(b"\x05" * 80)
    assert stage("prepare")([]) == 0 and stage("train_classifier")([]) == 0
    assert stage(stage_name)([]) == 1
    err = capsys.readouterr().err
    assert "samples samples/samples.safetensors are corrupt" in err and "dvc repro -f sample" in err
    assert "Traceback" not in err and not (workdir / "metrics" / "eval.json").exists()
