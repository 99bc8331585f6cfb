"""The score during training (train.score, gan/scoring.py, eval/during.py): when it is taken, that it changes no
trained weight, the best kept and resumed, and through the stages: the curve in MLflow and plots/, the best
generator sampled with sample.from: best, and the scores landing on the training run."""
from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import torch

from ganpipe.checkpoint import file_sha256
from ganpipe.data import datasets
from ganpipe.data.samples import load_samples
from ganpipe.eval import during
from ganpipe.gan.models import build
from ganpipe.params import config
from ganpipe.params.config import ConfigError

from helpers import interrupted, runs, stage, tiny_train, train_tiny, write_params


class Recorder:
    """A scorer returning the values it is given in turn, keeping a copy of each generator it scored."""
    key = "score/fake"

    def __init__(self, values):
        self.values, self.seen = list(values), []

    def protocol(self):
        return {"score.metric": self.key}

    def __call__(self, G):
        self.seen.append({k: v.clone() for k, v in G.state_dict().items()})
        return self.values[len(self.seen) - 1]

tiny, run = tiny_train, train_tiny  # the tiny training of tests/helpers


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# 160 images in batches of 32: 5 steps a pass; 0.48 kimg = 15 steps in ticks of 3 steps (0.096 kimg)
KIMG = dict(epochs=None, kimg=0.48, tick_kimg=0.096, score_every_kimg=0.2)


def test_scores_fall_at_fixed_images_shown_change_no_weight_and_keep_the_best(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params, **KIMG)
    split = datasets.synthetic(160)
    scorer = Recorder([9.0, 4.0, 6.0, 5.0])
    G_scored, scored = run(model_cfg, train_cfg, split, score=scorer)
    # tick ends at 0.096, 0.192, 0.288 (past 0.2), 0.384, 0.48 (past 0.4, and the last)
    assert [r["progress/kimg"] for r in scored.scores.rows] == [0.288, 0.48]
    G_plain, plain = run(model_cfg, dataclasses.replace(train_cfg, score="none"), split)
    assert plain.scores.rows == [] and plain.scores.best is None
    assert scored.history == plain.history and same(G_scored.state_dict(), G_plain.state_dict())
    assert same(scored.generator.state_dict(), plain.generator.state_dict())  # the EMA copy too
    best = scored.scores.best
    assert (best["kimg"], best["value"]) == (0.48, 4.0) and same(best["G"], scorer.seen[1])
    assert scored.score_s > 0 and scored.score_s <= scored.tick_work_s


def test_the_first_of_equal_scores_stays_best_and_the_best_module_holds_its_weights(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params, **{**KIMG, "score_every_kimg": 0.09})
    scorer = Recorder([3.0, 2.0, 2.0, 7.0, 2.0])
    _, result = run(model_cfg, train_cfg, datasets.synthetic(160), score=scorer)
    assert [r["score/fake"] for r in result.scores.rows] == [3.0, 2.0, 2.0, 7.0, 2.0]
    assert result.scores.best["tick"] == 2
    module = result.scores.best_module(result.generator)
    assert same(module.state_dict(), scorer.seen[1]) and not module.training
    assert not same(module.state_dict(), result.generator.state_dict())


def test_a_resumed_run_keeps_its_scores_and_its_best(tiny_params, tmp_path):
    model_cfg, train_cfg = tiny(tiny_params, **{**KIMG, "score_every_kimg": 0.09})
    split = datasets.synthetic(160)
    values = [5.0, 1.0, 4.0, 3.0, 2.0]
    _, full = run(model_cfg, train_cfg, split, score=Recorder(values))
    state = interrupted(lambda *a, **k: run(*a, score=Recorder(values), **k), model_cfg, train_cfg, split,
                        tmp_path / "train.pt", at=4)
    assert state["tick"] == 3 and len(state["scores"]["rows"]) == 3
    _, resumed = run(model_cfg, train_cfg, split, resume_from=state, score=Recorder(values[3:]))
    assert resumed.scores.rows == full.scores.rows
    assert resumed.scores.best["tick"] == full.scores.best["tick"] == 2
    assert same(resumed.scores.best["G"], full.scores.best["G"])
    # scores made another way (another classifier, say) are not continued: the curve starts again
    other = lambda: type("Other", (Recorder,), {"protocol": lambda self: {"score.metric": "score/other"}})(values)  # noqa: E731
    _, restarted = run(model_cfg, train_cfg, split, resume_from=state, score=other())
    assert [r["tick"] for r in restarted.scores.rows] == [4, 5]


def test_a_score_draws_fixed_samples_and_leaves_the_generator_and_the_random_streams_alone(tiny_params):
    model_cfg, _ = tiny(tiny_params)
    G, _ = build(model_cfg, (1, 28, 28), 0, 10)
    G.train()
    before = torch.random.get_rng_state()
    labels = during.classes_in_turn(30, 10)
    a = during.draw(G, 30, model_cfg.z_dim, labels, batch_size=7)
    assert torch.equal(torch.random.get_rng_state(), before) and G.training
    assert torch.equal(a, during.draw(G, 30, model_cfg.z_dim, labels, batch_size=30))  # batch-size free
    assert a.dtype == torch.uint8 and a.shape == (30, 1, 28, 28) and labels.bincount().tolist() == [3] * 10
    features = torch.randn(200, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = during.reference(features, "four-d points", "sha")
    score = during.Score("classifier", 200, model_cfg.z_dim, during.classes_in_turn(200, 10), lambda images: features, ref)
    assert score.key == "score/fid200_classifier" and during.key("inception", 5000) == "score/fid5k_inception"
    assert score(G) == pytest.approx(0.0, abs=1e-9)  # the reference itself scores 0


@pytest.mark.parametrize("sections,message", [
    ({"sample": {"from": "best"}, "train": {"score": "none"}}, "sample.from: best needs scores at fixed images"),
    ({"sample": {"from": "best"}, "train": {"score_every_kimg": None, "score_every_s": 60}},
     "sample.from: best needs scores at fixed images"),
    ({"sample": {"from": "first"}}, "sample.from must be one of ['last', 'best']"),
    ({"train": {"score_every_kimg": 10, "score_every_s": 60}}, "must be one a number and the other null"),
    ({"train": {"score_every_kimg": None}}, "must be one a number and the other null"),
    ({"train": {"score_every_kimg": 0}}, "train.score_every_kimg must be null or in (0,"),
    ({"train": {"score_n": 1}}, "train.score_n must be in [2, 100,000]"),
    ({"train": {"score": "fid"}}, "train.score must be one of ['auto', 'none', 'classifier', 'inception']"),
    ({"train": {"score": "classifier"}, "evaluate": {"features": "inception"}},
     "train.score: classifier needs the evaluation classifier"),
    ({"train": {"score": "inception"}}, "train.score: inception needs the Inception reference"),
])
def test_score_params_that_cannot_work_are_refused_with_the_fix(tiny_params, sections, message):
    params = {k: dict(v) for k, v in tiny_params.items()}
    for section, values in sections.items():
        params[section].update(values)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        config.from_dict(params)


def test_train_scores_logs_the_curve_keeps_the_best_and_sample_from_best_lands_on_the_training_run(workdir, capsys):
    from mlflow.tracking import MlflowClient

    # 270 training images in batches of 32: 8 steps (0.256 kimg) an epoch; scores past every 0.5 kimg
    write_params(workdir, train={"score": "auto", "epochs": 5, "score_every_kimg": 0.5, "score_n": 120},
                 sample={"from": "best"})
    for name in ("prepare", "train_classifier", "train"):
        assert stage(name)([]) == 0, (name, capsys.readouterr().err)
    assert "3 scores during training (score/fid120_classifier)" in capsys.readouterr().out
    rows = list(csv.DictReader((workdir / "plots/train_scores.csv").open()))
    assert [(r["epoch"], r["progress/kimg"]) for r in rows] == [("2", "0.512"), ("4", "1.024"), ("5", "1.28")]
    values = [float(r["score/fid120_classifier"]) for r in rows]
    summary = json.loads((workdir / "metrics/train.json").read_text())
    assert summary["score/fid120_classifier"] == values[-1] and summary["score/best"] == min(values)
    assert summary["score/best_kimg"] == float(rows[values.index(min(values))]["progress/kimg"])
    (run,) = runs(workdir)
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    history = client.get_metric_history(run.info.run_id, "score/fid120_classifier")
    assert [(m.step, m.value) for m in history] == [(2, values[0]), (4, values[1]), (5, values[2])]
    tags = run.data.tags
    assert tags["score.space"] == "classifier" and tags["score.reference"] == "held-out split (30 images)"
    assert tags["score.reference_sha256"] == file_sha256(workdir / "models/classifier.safetensors")
    assert 0 < run.data.metrics["time/score_share"] < 1 and run.data.metrics["time/score_s"] > 0  # a share, in s/s
    best = workdir / "models/generator_best.safetensors"
    assert tags["ganpipe.generator_best_sha256"] == file_sha256(best)

    # the scorer's own number for the best file is the best score: the file holds the best-scored weights
    from ganpipe.gan import sampling

    cfg = config.load(workdir / "params.yaml")
    from ganpipe.data.prepared import holdout_split

    scorer = during.for_training(cfg, json.loads((workdir / "data/prepared/info.json").read_text())["sha256"],
                                 holdout_split(workdir / "data/prepared"), cfg.model.z_dim, 10, torch.device("cpu"))
    assert scorer(sampling.load_generator(best).net) == pytest.approx(summary["score/best"], rel=1e-9)

    for name in ("sample", "evaluate"):
        assert stage(name)([]) == 0, (name, capsys.readouterr().err)
    assert load_samples(workdir / "samples/samples.safetensors").meta["generator_sha256"] == file_sha256(best)
    assert "logged to training run" in capsys.readouterr().out  # it logged sample.from: best
    (run,) = runs(workdir)
    assert run.data.params["sample.from"] == "best" and "eval/fid" in run.data.metrics

    # switched to the last generator afterwards: its scores go to an evaluation run of their own, linked
    write_params(workdir, sample={"from": "last"})
    for name in ("sample", "evaluate"):
        assert stage(name)([]) == 0, (name, capsys.readouterr().err)
    assert "linked to training run" in capsys.readouterr().out
    evaluation = next(r for r in runs(workdir) if r.info.run_id != run.info.run_id)
    assert evaluation.data.params["sample.from"] == "last"
