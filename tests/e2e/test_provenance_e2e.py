"""Every score belongs to its run, with real `dvc exp run` on the session's tiny repo (tests/helpers/e2e.py): changing
sample.n and an evaluate param, or classifier.epochs, gives each experiment its own correct scores on its own run,
the original training run's scores and artifact stay byte for byte, and `ganpipe reproduce` rebuilds the run that
retrained its classifier."""
from __future__ import annotations

import json

from ganpipe.checkpoint import file_sha256
from ganpipe.keys import CLASSIFIER_TAG, EVALUATES_TAG, GENERATOR_TAG, KIND_TAG, PROVENANCE_TAG

from helpers.e2e import dvc, ganpipe, sh

# experiment name: ({param: value} changed, {protocol key: value} its scores must show; None: it retrains).
# sample.n re-runs sample and evaluate, evaluate.pr_k evaluate alone: one experiment changes both, each seen in
# the protocol, which saves a third `dvc exp run` here
CASES = {
    "resampled": ({"sample.n": "300", "evaluate.pr_k": "4"}, {"n_fake": 300, "precision_recall_k": 4}),
    "longer-classifier": ({"classifier.epochs": "7"}, None),
}


def scores(run) -> dict:
    return {k: v for k, v in run.data.metrics.items() if k.startswith(("eval/", "eval_real/"))}


def eval_json(client, run, folder) -> bytes:
    return open(client.download_artifacts(run.info.run_id, "eval/eval.json", str(folder)), "rb").read()


def test_changed_sample_evaluate_and_classifier_params_are_scored_apart(repo, env, tmp_path):
    from mlflow.tracking import MlflowClient

    from ganpipe.eval.protocol import flat_scores

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ganpipe").experiment_id
    generator = file_sha256(repo / "models" / "generator.safetensors")  # the committed tiny params' generator
    # earlier tests may have retrained this generator: an evaluation links to the newest run that trained it
    trained = sorted((r for r in client.search_runs([experiment], f"tags.`{GENERATOR_TAG}` = '{generator}'")
                      if r.data.tags.get(KIND_TAG) == "training" and scores(r)), key=lambda r: -r.info.start_time)
    original = trained[0]
    before = {r.info.run_id: (scores(r), eval_json(client, r, tmp_path / r.info.run_id)) for r in trained}
    sh("git", "add", "-A", cwd=repo, env=env)  # dvc.lock committed: a --temp experiment starts from it
    sh("git", "commit", "-q", "--allow-empty", "-m", "outputs", cwd=repo, env=env)
    for name, (changes, _) in CASES.items():
        dvc(repo, env, "exp", "run", "--temp", "-n", name, *(a for k, v in changes.items() for a in ("-S", f"{k}={v}")))

    for name, (changes, protocol) in CASES.items():
        (run,) = client.search_runs([experiment], f"tags.`dvc.exp_name` = '{name}'")
        tags = run.data.tags
        assert all(run.data.params[k] == v for k, v in changes.items()) and tags[GENERATOR_TAG] == generator, name
        if protocol:
            assert tags[KIND_TAG] == "evaluation" and tags[EVALUATES_TAG] == original.info.run_id, name
            assert tags["mlflow.parentRunId"] == original.info.run_id
            # the reason names the first param (sorted) that keeps the scores off the training run
            assert f"{min(changes)}={changes[min(changes)]}" in tags["eval.reason"], tags["eval.reason"]
        else:
            # the score during training compares with the classifier, so a new one trains again (dvc.yaml): a
            # training run of its own, whose generator is the same bytes (the score changes no weight)
            assert tags[KIND_TAG] == "training" and tags["score.reference_sha256"] == tags[CLASSIFIER_TAG]
            assert tags["score.reference_sha256"] != original.data.tags["score.reference_sha256"]
        assert run.data.params["train.epochs"] == original.data.params["train.epochs"]  # the training side
        ref = sh("git", "for-each-ref", "--format=%(refname)", "refs/exps", cwd=repo, env=env).split()
        committed = json.loads(sh("git", "show", f"{next(r for r in ref if r.endswith('/' + name))}:metrics/eval.json",
                                  cwd=repo, env=env))
        assert scores(run) == flat_scores(committed), name  # the experiment's own numbers, as DVC recorded them
        assert json.loads(eval_json(client, run, tmp_path / name)) == committed
        assert committed["protocol"]["provenance"] == tags[PROVENANCE_TAG] != original.data.tags[PROVENANCE_TAG]
        if protocol:
            assert {k: committed["protocol"][k] for k in protocol} == protocol
        else:
            assert tags[CLASSIFIER_TAG] != original.data.tags[CLASSIFIER_TAG]  # a retrained classifier
    for run_id, held in before.items():  # every training run of this generator: untouched, byte for byte
        after = client.get_run(run_id)
        assert (scores(after), eval_json(client, after, tmp_path / "after" / run_id)) == held
        assert after.info.status == "FINISHED"

    # reproduced: the run with its own classifier, the one whose rebuild differs most from the original's
    # (an experiment's run by id and by name: test_reproduce_e2e.py; a `dvc repro` run by id:
    # test_image_folder_e2e.py)
    retrained = client.search_runs([experiment], "tags.`dvc.exp_name` = 'longer-classifier'")[0]
    out = ganpipe(repo, env, "reproduce", retrained.info.run_id)
    assert out.returncode == 0 and "REPRODUCED" in out.stdout and "NOT" not in out.stdout, \
        out.stdout[-3000:] + out.stderr[-3000:]
