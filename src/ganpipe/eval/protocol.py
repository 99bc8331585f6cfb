"""The evaluation protocol: classifier outputs computed once per image set, every score from them.

Generated samples are scored against the real held-out split. The real held-out images scored the same way
against the real training split give the ceiling a perfect generator would reach. Every result carries its
protocol (classifier hash, feature layer, set sizes, reference split, dtype), so numbers are only compared
when they were measured the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ganpipe.eval import copying, metrics
from ganpipe.eval.classifier import Classifier, features_and_probs
from ganpipe.keys import INCEPTION_PREFIX, SCORE_PREFIXES
from ganpipe.params.config import EvaluateConfig

FEATURE_LAYER = "classifier.features (penultimate layer, after ReLU)"

# What each score means to people (label, format, kind): ganpipe.results.scores.


@dataclass(frozen=True)
class Embedded:
    """One image set as the classifier sees it, computed once and shared by every metric."""

    features: torch.Tensor  # float64 [N, F]
    probs: torch.Tensor  # float64 [N, K]


def embed(clf: Classifier, images: torch.Tensor, batch_size: int) -> Embedded:
    return Embedded(*features_and_probs(clf, images, batch_size))


def equal_size(a: torch.Tensor, b: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets cut to the smaller one's size by a fixed random subset of the larger."""
    n = min(len(a), len(b))
    g = torch.Generator().manual_seed(seed)
    pick = lambda x: x if len(x) == n else x[torch.randperm(len(x), generator=g)[:n]]  # noqa: E731
    return pick(a), pick(b)


def scores(sample: Embedded, ref: Embedded, cfg: EvaluateConfig) -> dict:
    """Every unconditional score of one image set against a reference set."""
    probs, feats, ref_feats = sample.probs, sample.features, ref.features
    hist = metrics.class_histogram(probs)
    is_all, _ = metrics.inception_score(probs, 1)
    # splits of a fixed random permutation: a set stored in class order (the held-out split) would otherwise
    # put one class in each split and score IS = 1 there
    shuffled = probs[torch.randperm(len(probs), generator=torch.Generator().manual_seed(0))]
    is_mean, is_std = metrics.inception_score(shuffled, min(cfg.is_splits, len(probs)))
    # KID's cubic kernel (x.y/d + 1)^3 assumes features of order 1 (as Inception's are); this classifier's ReLU
    # features have norms near 40, which makes the estimate mostly noise. So KID sees features centred on the
    # reference set's mean and divided by ONE scale, the reference's RMS deviation per dimension (a
    # per-dimension std would divide by ~0 on ReLU units that never fire on the reference set and explode).
    # FID is computed on the raw features.
    mu = ref_feats.mean(0)
    scale = (ref_feats - mu).pow(2).mean().sqrt().clamp(min=1e-12)
    kid_mean, kid_std = metrics.kid((feats - mu) / scale, (ref_feats - mu) / scale, cfg.kid_subsets,
                                    cfg.kid_subset_size)
    # k-NN radii shrink as a set grows, so precision/recall/density/coverage compare sets of equal size:
    # a fixed random subset of the larger one (the ceiling is then measured at the same size as the samples)
    knn_fake, knn_ref = equal_size(feats, ref_feats)
    knn = metrics.knn_scores(knn_ref, knn_fake, cfg.pr_k, cfg.dc_k)
    return {
        "is": is_all,
        "is_split_mean": is_mean,
        "is_split_std": is_std,
        "fid": metrics.fid(feats, ref_feats),
        "kid": kid_mean,
        "kid_std": kid_std,
        **knn,
        "classes_covered": metrics.classes_covered(hist, cfg.cover_share),
        "kl_uniform": metrics.kl_to_uniform(hist),
        "confident_share": metrics.confident_share(probs, cfg.confidence),
        "class_hist": hist.tolist(),
    }


def per_class_fid(sample: Embedded, labels: torch.Tensor, ref: Embedded, ref_labels: torch.Tensor) -> list:
    """FID of each class's images against the reference images of that class; None where either side has too
    few images for the feature dimension (FID's covariance needs more samples than dimensions)."""
    out: list[float | None] = []
    dim = sample.features.shape[1]
    for k in range(sample.probs.shape[1]):
        a, b = sample.features[labels == k], ref.features[ref_labels == k]
        out.append(metrics.fid(a, b) if min(len(a), len(b)) > dim else None)
    return out


def conditional_scores(sample: Embedded, requested: torch.Tensor, ref: Embedded, ref_labels: torch.Tensor) -> dict:
    """How well a conditional generator obeys: classifier agreement with the requested class, per-class FID."""
    agreement, per_class = metrics.class_agreement(sample.probs, requested)
    return {"class_agreement": agreement, "class_agreement_per_class": per_class,
            "fid_per_class": per_class_fid(sample, requested, ref, ref_labels)}


def evaluate(clf: Classifier, fake: torch.Tensor, holdout: torch.Tensor, train: torch.Tensor,
             cfg: EvaluateConfig, requested: torch.Tensor | None = None,
             holdout_labels: torch.Tensor | None = None, train_labels: torch.Tensor | None = None,
             classifier_sha256: str = "") -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """({'fake': scores vs holdout, 'real': holdout scored vs train (the ceiling), 'protocol': how}, each
    sample's distance to and index of its nearest training image (copy detection, eval/copying.py)).

    `requested`: the class a conditional generator was asked for per sample; adds class agreement (the
    classifier's accuracy on held-out labels is its ceiling) and per-class FID against the training split's
    images of each class (the held-out split has too few per class).
    """
    fake_e, hold_e, train_e = (embed(clf, x, cfg.batch_size) for x in (fake, holdout, train))
    result = {"fake": scores(fake_e, hold_e, cfg), "real": scores(hold_e, train_e, cfg)}
    copy, fake_d, fake_i = copying.scores(train_e.features, hold_e.features, fake_e.features, cfg.copy_quantile,
                                          cfg.copy_cells)
    result["fake"] |= copy
    if requested is not None and train_labels is not None and holdout_labels is not None:
        result["fake"] |= conditional_scores(fake_e, requested, train_e, train_labels)
        result["real"] |= conditional_scores(hold_e, holdout_labels, train_e, train_labels)
    result["protocol"] = {
        "classifier_sha256": classifier_sha256,
        "feature_layer": FEATURE_LAYER,
        "feature_dim": fake_e.features.shape[1],
        "stats_dtype": "float64",
        "n_fake": len(fake), "n_holdout": len(holdout), "n_train": len(train),
        "fake_reference": "holdout split", "real_reference": "train split",
        "per_class_fid_reference": "train split, per class",
        "kid": {"subsets": cfg.kid_subsets, "subset_size": min(cfg.kid_subset_size, len(fake), len(holdout)),
                "kernel": "(x.y/d + 1)^3"},
        "kid_features": "centred on the reference mean, divided by the reference's RMS deviation per dimension",
        "precision_recall_k": cfg.pr_k, "density_coverage_k": cfg.dc_k,
        "knn_sets": "equal size: a fixed random subset of the larger set",
        "copy": {"distance": "Euclidean in the classifier features, to the nearest training image",
                 "quantile": cfg.copy_quantile, "threshold_from": "held-out split", "ct_cells": cfg.copy_cells,
                 "ct_min_samples_per_cell": copying.MIN_FAKES,
                 "ct_cells_fitted_on": f"at most {copying.KMEANS_FIT} training points, drawn with the seed"},
    }
    return result, (fake_d, fake_i)


def flat_scores(result: dict) -> dict[str, float]:
    """The scalar scores as MLflow metrics: eval/<name> for the samples, eval_real/<name> for the ceiling;
    eval/inception_<name> and eval_real/inception_<name> in Inception space."""
    out = {}
    for space, name in ((result, ""), (result.get("inception", {}), INCEPTION_PREFIX)):
        for side, prefix in zip(("fake", "real"), SCORE_PREFIXES):
            out |= {f"{prefix}{name}{k}": float(v) for k, v in space.get(side, {}).items()
                    if isinstance(v, (int, float))}
    return out
