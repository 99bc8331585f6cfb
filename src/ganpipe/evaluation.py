"""The evaluation protocol: classifier features computed once per image set, every score from them.

Generated samples are scored against the real held-out split; the real held-out images scored the same way
(FID against the real training split) give the ceiling a perfect generator would reach.
"""
from __future__ import annotations

import torch

from ganpipe import metrics
from ganpipe.classifier import Classifier, features_and_probs
from ganpipe.config import EvaluateConfig


def scores(probs: torch.Tensor, feats: torch.Tensor, ref_feats: torch.Tensor, cfg: EvaluateConfig) -> dict:
    """Every score of one image set given its classifier outputs and the reference set's features."""
    hist = metrics.class_histogram(probs)
    is_all, _ = metrics.inception_score(probs, 1)
    # splits of a fixed random permutation: a set stored in class order (the held-out split) would otherwise
    # put one class in each split and score IS = 1 there
    shuffled = probs[torch.randperm(len(probs), generator=torch.Generator().manual_seed(0))]
    is_mean, is_std = metrics.inception_score(shuffled, min(cfg.is_splits, len(probs)))
    return {
        "is": is_all,
        "is_split_mean": is_mean,
        "is_split_std": is_std,
        "fid": metrics.fid(feats, ref_feats),
        "classes_covered": metrics.classes_covered(hist, cfg.cover_share),
        "kl_uniform": metrics.kl_to_uniform(hist),
        "confident_share": metrics.confident_share(probs, cfg.confidence),
        "class_hist": hist.tolist(),
    }


def evaluate(clf: Classifier, fake: torch.Tensor, holdout: torch.Tensor, train: torch.Tensor,
             cfg: EvaluateConfig, requested: torch.Tensor | None = None,
             holdout_labels: torch.Tensor | None = None) -> dict:
    """{'fake': scores vs holdout, 'real': holdout scored vs train (the ceiling), 'protocol': sizes}.

    `requested`: the class a conditional generator was asked for per sample; adds class_agreement (overall
    and per class), with the classifier's accuracy on the held-out labels as its ceiling.
    """
    fake_f, fake_p = features_and_probs(clf, fake, cfg.batch_size)
    hold_f, hold_p = features_and_probs(clf, holdout, cfg.batch_size)
    train_f, _ = features_and_probs(clf, train, cfg.batch_size)
    fake_scores, real_scores = scores(fake_p, fake_f, hold_f, cfg), scores(hold_p, hold_f, train_f, cfg)
    if requested is not None:
        fake_scores["class_agreement"], fake_scores["class_agreement_per_class"] = \
            metrics.class_agreement(fake_p, requested)
        if holdout_labels is not None:
            real_scores["class_agreement"], real_scores["class_agreement_per_class"] = \
                metrics.class_agreement(hold_p, holdout_labels)
    return {
        "fake": fake_scores,
        "real": real_scores,
        "protocol": {"n_fake": len(fake), "n_holdout": len(holdout), "n_train": len(train),
                     "feature_dim": fake_f.shape[1]},
    }
