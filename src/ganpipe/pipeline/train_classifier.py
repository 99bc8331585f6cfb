"""Stage `train_classifier`: the evaluation CNN on the real training split; its held-out accuracy."""
from __future__ import annotations

from pathlib import Path

from ganpipe import sizes
from ganpipe.config import Config
from ganpipe.data.prepared import read_prepared
from ganpipe.eval import classifier
from ganpipe.files import write_json


def run(cfg: Config) -> dict:
    info, train_split, holdout = read_prepared(Path(cfg.paths.prepared))
    sizes.check_data(cfg, info["n_train"], info["n_holdout"], info["image_shape"][-1])
    sizes.check_labelled(info)
    model = classifier.train_classifier(train_split, cfg.classifier, info["num_classes"])
    scores = {"holdout_accuracy": classifier.accuracy(model, holdout),
              "train_accuracy": classifier.accuracy(model, train_split)}
    classifier.save(model, Path(cfg.paths.classifier), cfg.logged("classifier"))
    write_json(Path(cfg.paths.classifier_metrics), scores)
    return scores
