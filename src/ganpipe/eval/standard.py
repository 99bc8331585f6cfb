"""Scores in the standard Inception-V3 space, the space of published FIDs: computed as papers do, against the
real training split (its statistics are the usual "reference statistics"), with the sample count recorded,
because FID depends on it (it falls as n grows: only numbers made at the same n compare).

The real held-out split scored the same way against the training split is the ceiling a perfect generator
would reach at the held-out split's size. Copy detection (eval/copying.py) runs in this space too.
"""
from __future__ import annotations

import torch

from ganpipe.eval import copying, inception, metrics
from ganpipe.eval.protocol import equal_size
from ganpipe.params.config import EvaluateConfig


def distribution_scores(feats: torch.Tensor, ref: torch.Tensor, cfg: EvaluateConfig) -> dict:
    """FID (and FID extrapolated to infinite n), KID (raw features, cubic kernel: the standard definition) and
    the k-NN scores against `ref`."""
    ref_stats = metrics.feature_stats(ref)
    kid_mean, kid_std = metrics.kid(feats, ref, cfg.kid_subsets, cfg.kid_subset_size)
    knn_fake, knn_ref = equal_size(feats, ref)
    out = {"fid": metrics.frechet_distance_to(feats, *ref_stats),
           "kid": kid_mean, "kid_std": kid_std, **metrics.knn_scores(knn_ref, knn_fake, cfg.pr_k, cfg.dc_k)}
    if cfg.fid_infinity_points:
        out["fid_infinity"] = metrics.fid_infinity(feats, *ref_stats, cfg.fid_infinity_points)[0]
    return out


def evaluate(fake: torch.Tensor, train: torch.Tensor, holdout: torch.Tensor,
             cfg: EvaluateConfig) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """({'fake', 'real', 'protocol'}, each sample's distance to and index of its nearest training image)."""
    copy, fake_d, fake_i = copying.scores(train, holdout, fake, cfg.copy_quantile, cfg.copy_cells)
    result = {"fake": {**distribution_scores(fake, train, cfg), **copy},
              "real": distribution_scores(holdout, train, cfg),
              "protocol": protocol(cfg, len(fake), len(train), len(holdout))}
    return result, fake_d, fake_i


def protocol(cfg: EvaluateConfig, n_fake: int, n_train: int, n_holdout: int) -> dict:
    return {**inception.PROTOCOL, "feature_dim": inception.FEATURE_DIM,
            "n_fake": n_fake, "n_train": n_train, "n_holdout": n_holdout,
            "fake_reference": "train split (the standard FID reference)", "real_reference": "train split",
            "fid_note": "FID depends on n (it falls as n grows); below 2048 images the covariance is singular",
            "fid_infinity": ({"method": "Chong & Forsyth 2020: least-squares line of FID against 1/n, at 1/n = 0",
                              "points": cfg.fid_infinity_points, "subset_sizes": "evenly spaced from 0.2 n to n",
                              "reference": "exact (all its images)"} if cfg.fid_infinity_points else "off"),
            "kid": {"subsets": cfg.kid_subsets, "subset_size": min(cfg.kid_subset_size, n_fake, n_train),
                    "kernel": "(x.y/d + 1)^3", "features": "raw"},
            "precision_recall_k": cfg.pr_k, "density_coverage_k": cfg.dc_k,
            "knn_sets": "equal size: a fixed random subset of the larger set",
            **copy_protocol(cfg)}


def copy_protocol(cfg: EvaluateConfig) -> dict:
    return {"copy": {"distance": "Euclidean in Inception features, to the nearest training image",
                     "quantile": cfg.copy_quantile, "threshold_from": "held-out split", "ct_cells": cfg.copy_cells,
                     "ct_min_samples_per_cell": copying.MIN_FAKES,
                     "ct_cells_fitted_on": f"at most {copying.KMEANS_FIT} training points, drawn with the seed"}}
