"""What the data must hold for the params: batches that fit, sets large enough for every score, samples that fit
in memory. Pure checks, each raising a ConfigError that names the params to change; every stage runs the ones it
can before its expensive work, so a bad combination fails in prepare, not after training."""
from __future__ import annotations

import os

from ganpipe.errors import ConfigError
from ganpipe.params.config import Config


def check_batch_fits(key: str, batch_size: int, n_train: int) -> None:
    """One rule for every batch over the training split: a batch larger than the data cannot be filled."""
    if batch_size > n_train:
        raise ConfigError(f"{key} must be at most the {n_train} training images, got {batch_size}")


def check_data(cfg: Config, n_train: int, n_holdout: int, image_size: int) -> None:
    """The prepared splits can serve every stage: both batch sizes fit, and the held-out split (the reference of
    every score) is large enough for FID (more images than feature dimensions) and the k-NN scores (more than k)."""
    check_batch_fits("classifier.batch_size", cfg.classifier.batch_size, n_train)
    check_batch_fits("train.batch_size", cfg.train.batch_size, n_train)
    if cfg.classifier.augment_shift >= image_size:
        raise ConfigError(f"classifier.augment_shift ({cfg.classifier.augment_shift}) must be smaller than the "
                          f"image size ({image_size}); 2 is the default")
    dim, k = cfg.classifier.feature_dim, max(cfg.evaluate.pr_k, cfg.evaluate.dc_k)
    grow = (f"raise data.max_images ({cfg.data.max_images}) or data.holdout_fraction ({cfg.data.holdout_fraction})"
            if cfg.data.max_images is not None else f"raise data.holdout_fraction ({cfg.data.holdout_fraction})")
    spaces = (("held-out", n_holdout), ("training", n_train)) if cfg.evaluate.uses("classifier") else ()
    for name, n in spaces:
        if n <= dim:
            raise ConfigError(f"the {name} split has {n} images, but FID in the classifier's {dim}-d feature "
                              f"space needs more than {dim}: {grow}, or lower classifier.feature_dim")
    if n_holdout <= k:
        raise ConfigError(f"the held-out split has {n_holdout} images, but evaluate.pr_k / evaluate.dc_k need more "
                          f"than {k}: {grow}, or lower them")


def check_memory(key: str, n: int, bytes_each: int, what: str) -> None:
    """Refuse a count whose arrays alone would take more than half of this machine's memory (instead of
    thrashing, or being killed without a message, partway through)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every platform reports it: then there is no check
        return
    need = n * bytes_each
    if need > total / 2:
        raise ConfigError(f"{key} = {n:,} needs about {need / 2**30:,.1f} GiB for {what}, more than half of this "
                          f"machine's {total / 2**30:.0f} GiB; lower {key}")


def check_scoring(n_images: int, n_holdout: int, feature_dim: int, k: int, what: str) -> None:
    """A set of images can be scored against the held-out split: FID needs more images than feature dimensions,
    a k-NN radius more than k points. `what` names the count to raise (e.g. sample.n, --samples)."""
    if n_images <= feature_dim:
        raise ConfigError(f"{what} gives {n_images} images, but FID in the classifier's {feature_dim}-d feature "
                          f"space needs more than {feature_dim}: score more images")
    if min(n_images, n_holdout) <= k:
        raise ConfigError(f"{what} gives {n_images} images and the held-out split has {n_holdout}, but the k-NN "
                          f"scores (evaluate.pr_k, evaluate.dc_k) need more than {k} in each")


def check_labelled(info: dict) -> None:
    """The classifier-based scores judge samples by class: the data must have at least two classes."""
    if not info.get("labelled", True) or info["num_classes"] < 2:
        what = ("has no labels (a flat folder of images)" if not info.get("labelled", True)
                else f"has a single class ({', '.join(info.get('classes', []))})")
        raise ConfigError(f"the data {what}, but the evaluation classifier and its scores need at least two "
                          f"classes: put the images into one subfolder per class under data.root, or score in "
                          f"the standard Inception space alone, which needs no labels (evaluate.features: "
                          f"inception, with model.conditional: false)")
