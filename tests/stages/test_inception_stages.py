"""The Inception space through the real stages, in-process: unlabelled data scored with evaluate.features =
inception (no classifier trained), the reference computed once and checked, copy detection logged to MLflow,
and `ganpipe evaluate --samples --features inception` for samples made anywhere."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganpipe.errors import CheckpointError, ConfigError, DataError
from ganpipe.eval import classifier, reference

from helpers import runs, stage, write_params


@pytest.fixture
def two_threads():
    torch.set_num_threads(2)  # Inception is the slow part: use both cores (conftest sets 1 per test)
    yield


def test_unlabelled_folder_scored_in_inception_space(workdir, capsys, two_threads):
    from PIL import Image

    from ganpipe import cli

    rng = np.random.default_rng(0)
    (workdir / "flat").mkdir()
    for i in range(60):
        Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(workdir / "flat" / f"{i}.png")
    write_params(workdir, data={"dataset": "imagefolder", "root": "flat", "image_size": 8, "max_images": None,
                                "holdout_fraction": 0.25},
                 model={"conditional": False, "g_hidden": [16, 8], "d_hidden": [8, 16]},
                 sample={"n": 60, "batch_size": 30, "grid_rows": 2},
                 # train.score auto: no classifier, so the score during training is in Inception space
                 train={"score": "auto", "score_n": 20},
                 evaluate={"features": "inception", "inception_n": 40, "pr_k": 2, "dc_k": 3, "copy_cells": 2,
                           "fid_infinity_points": 3, "kid_subsets": 10, "reference_n": 30})
    for name in ("prepare", "train_classifier", "reference", "train", "sample", "evaluate"):
        assert stage(name)([]) == 0, (name, capsys.readouterr().err)
    trained = json.loads((workdir / "metrics/train.json").read_text())
    assert trained["score/fid20_inception"] == trained["score/best"] > 0  # two epochs: scored at the end only
    assert json.loads((workdir / "metrics/classifier.json").read_text())["trained"] is False
    with pytest.raises(CheckpointError, match="no classifier was trained"):
        classifier.load(workdir / "models/classifier.safetensors")
    result = json.loads((workdir / "metrics/eval.json").read_text())
    assert "fake" not in result and result["protocol"]["features"] == "inception"
    space = result["inception"]
    # the training split (45 images) is represented by its capped reference of 30; the held-out split is smaller
    assert space["protocol"]["n_fake"] == 40 and space["protocol"]["n_holdout"] == 15
    assert space["protocol"]["n_train"] == 30 and space["protocol"]["n_train_total"] == 45
    assert space["protocol"]["reference_n"] == 30 and "seeded random subset" in space["protocol"]["reference_draw"]
    assert space["fake"]["fid"] > space["real"]["fid"] > 0 and 0 <= space["fake"]["copy_share"] <= 1
    assert "fid_infinity" in space["fake"] and space["protocol"]["fid_infinity"]["points"] == 3
    (run,) = runs(workdir)
    metrics = run.data.metrics
    assert run.data.tags["score.space"] == "inception" and run.data.tags["score.reference"] == "training split (30 images)"
    for key in ("eval/inception_fid", "eval/inception_kid", "eval/inception_fid_infinity", "eval/inception_copy_share",
                "eval/inception_copy_ct", "eval_real/inception_fid", "time/inception_images_per_s"):
        assert key in metrics, key
    assert not any(k in metrics for k in ("eval/fid", "eval/is"))  # no classifier-space scores
    from ganpipe.results import scores

    unregistered = [k for k in metrics if k.startswith(("eval/", "eval_real/")) and scores.lookup(k) is None]
    assert not unregistered, f"scores written but not in results/scores.py: {unregistered}"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    assert "closest_pairs.png" in {a.path.split("/")[-1] for a in client.list_artifacts(run.info.run_id, "eval")}
    assert (workdir / "plots/closest_pairs.png").is_file()

    # samples made anywhere: the reference file of the stage is used (nothing recomputed for the real data)
    np.savez(workdir / "mine.npz", images=rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8))
    capsys.readouterr()
    assert cli.main(["evaluate", "--samples", "mine.npz", "--features", "inception"]) == 0
    out = capsys.readouterr().out
    assert "Inception-V3 space" in out and "FID depends on n" in out and "computing the Inception" not in out
    assert json.loads((workdir / "mine.eval.json").read_text())["inception"]["protocol"]["n_fake"] == 30

    # with evaluate.features: classifier the stage keeps no features: the command computes them once, in .ganpipe/
    write_params(workdir, evaluate={"features": "classifier"})
    assert stage("reference")([]) == 0
    with pytest.raises(ConfigError, match="evaluate.features=classifier"):
        reference.load(workdir / "data/reference/inception.safetensors",
                       json.loads((workdir / "data/prepared/info.json").read_text())["sha256"], 30)
    for attempt in range(2):
        assert cli.main(["evaluate", "--samples", "mine.npz", "--features", "inception"]) == 0
        assert ("computing the Inception" in capsys.readouterr().out) == (attempt == 0)
    assert len(list((workdir / ".ganpipe").glob("inception-*.safetensors"))) == 1


def test_reference_file_refuses_other_data_and_damage(tmp_path):
    path = tmp_path / "ref.safetensors"
    with pytest.raises(DataError, match="run `dvc repro reference`"):
        reference.load(path, "abc", None)
    reference.save(path, torch.zeros(3, 2048), torch.zeros(2, 2048), "abc", "both", 1000)
    train, held = reference.load(path, "abc", 1000)
    assert train.shape == (3, 2048) and held.shape == (2, 2048)
    with pytest.raises(DataError, match="holds the features of other data"):
        reference.load(path, "def", 1000)
    with pytest.raises(DataError, match="evaluate.reference_n=1000, the params say 2000"):
        reference.load(path, "abc", 2000)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a valid reference file"):
        reference.load(path, "abc", 1000)
    first = tmp_path / "a.safetensors"
    reference.save(first, None, None, "abc", "classifier", None)
    reference.save(tmp_path / "b.safetensors", None, None, "abc", "classifier", None)
    assert first.read_bytes() == (tmp_path / "b.safetensors").read_bytes()  # same inputs, same bytes (DVC)
