"""Stage `train_classifier`: the evaluation CNN on the real training split; its held-out accuracy. With
evaluate.features = inception no score needs it: the stage then records that and trains nothing."""
from __future__ import annotations


from ganpipe.data.prepared import read_prepared
from ganpipe.eval import classifier
from ganpipe.files import write_json
from ganpipe.params import sizes
from ganpipe.params.config import Config


def run(cfg: Config) -> dict:
    info, train_split, holdout = read_prepared(cfg.paths.prepared)
    sizes.check_data(cfg, info["n_train"], info["n_holdout"], info["image_shape"][-1])
    if not cfg.evaluate.uses("classifier"):  # Inception space only: no score needs a classifier (nor labels)
        classifier.save_not_trained(cfg.paths.classifier, cfg.evaluate.features)
        scores = {"trained": False, "reason": f"evaluate.features is {cfg.evaluate.features}"}
        write_json(cfg.paths.classifier_metrics, scores)
        return scores
    sizes.check_labelled(info)
    model = classifier.train_classifier(train_split, cfg.classifier, info["num_classes"])
    scores = {"holdout_accuracy": classifier.accuracy(model, holdout),
              "train_accuracy": classifier.accuracy(model, train_split)}
    classifier.save(model, cfg.paths.classifier, cfg.logged("classifier"))
    write_json(cfg.paths.classifier_metrics, scores)
    return scores
