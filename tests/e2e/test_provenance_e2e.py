"""Every score belongs to its run, with real `dvc exp run` on the session's tiny repo (tests/helpers/e2e.py): changing
sample.n, an evaluate param or classifier.epochs gives each experiment its own correct scores on its own run,
the original training run's scores and artifact stay byte for byte, and `ganpipe reproduce` rebuilds the training
run and the evaluation that retrained its classifier."""
from __future__ import annotations

import json

from ganpipe.checkpoint import file_sha256
from ganpipe.keys import CLASSIFIER_TAG, EVALUATES_TAG, GENERATOR_TAG, KIND_TAG, PROVENANCE_TAG

from helpers.e2e import dvc, ganpipe, sh

CASES = {  # experiment name: (the -S override, what its scores' protocol must show)
    "more-samples": ("sample.n=300", ("n_fake", 300)),
    "pr-k-4": ("evaluate.pr_k=4", ("precision_recall_k", 4)),
    "longer-classifier": ("classifier.epochs=7", None),
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
    for name, (change, _) in CASES.items():
        dvc(repo, env, "exp", "run", "--temp", "-n", name, "-S", change)

    for name, (change, protocol) in CASES.items():
        (run,) = client.search_runs([experiment], f"tags.`dvc.exp_name` = '{name}'")
        tags = run.data.tags
        key, value = change.split("=")
        assert run.data.params[key] == value and tags[GENERATOR_TAG] == generator, name
        if protocol:
            assert tags[KIND_TAG] == "evaluation" and tags[EVALUATES_TAG] == original.info.run_id, name
            assert tags["mlflow.parentRunId"] == original.info.run_id
            assert f"{key}={value}" in tags["eval.reason"], tags["eval.reason"]
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
            assert committed["protocol"][protocol[0]] == protocol[1]
        else:
            assert tags[CLASSIFIER_TAG] != original.data.tags[CLASSIFIER_TAG]  # a retrained classifier
    for run_id, held in before.items():  # every training run of this generator: untouched, byte for byte
        after = client.get_run(run_id)
        assert (scores(after), eval_json(client, after, tmp_path / "after" / run_id)) == held
        assert after.info.status == "FINISHED"

    # reproduced: the training run and the evaluation with its own classifier, the one whose rebuild differs most
    # (the other two re-evaluate the same way; tests/e2e/test_reproduce_e2e.py reproduces a run by name too)
    retrained = client.search_runs([experiment], "tags.`dvc.exp_name` = 'longer-classifier'")[0]
    for run_id in (original.info.run_id, retrained.info.run_id):
        out = ganpipe(repo, env, "reproduce", run_id)
        assert out.returncode == 0 and "REPRODUCED" in out.stdout and "NOT" not in out.stdout, \
            out.stdout[-3000:] + out.stderr[-3000:]
