"""`ganpipe score REAL FAKE`: two image sets scored against each other in Inception-V3 space, inside a ganpipe
project or outside one (no dvc, no params.yaml needed), offline, on a GPU when one is visible.

Each side is a folder of images (any size and mode), an array file (.npz, .npy, .pt, .safetensors), or a
ganpipe training run (its id or DVC experiment name), whose generator then draws --n images (from --seed). The
evaluate section of params.yaml, when there is one, sets the score options; else params.yaml's defaults do.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from ganpipe.console import note
from ganpipe.data.imagesets import ImageSet, open_set
from ganpipe.errors import ConfigError, SamplesError
from ganpipe.eval import inception, twosets
from ganpipe.files import write_json
from ganpipe.params.config import EvaluateConfig, TrackingConfig
from ganpipe.results import scores

DEFAULT_N_FROM_RUN = 10_000  # images drawn from a run's generator when --n is not given
# params.yaml's evaluate section, for scoring outside a project (tests/unit/test_score.py keeps them equal)
DEFAULTS = {"batch_size": 250, "is_splits": 10, "confidence": 0.9, "cover_share": 0.1, "kid_subsets": 100,
            "kid_subset_size": 1000, "pr_k": 3, "dc_k": 5, "features": "inception", "inception_n": 5000,
            "inception_batch": 16, "copy_quantile": 0.05, "copy_cells": 5, "fid_infinity_points": 15,
            "reference_n": 50_000, "threads": 2}


def default_evaluate() -> EvaluateConfig:
    return EvaluateConfig(**DEFAULTS)


@dataclasses.dataclass(frozen=True)
class Request:
    real: str
    fake: str
    n: int | None = None  # at most this many images of each side (a fixed random subset)
    json: Path | None = None
    batch_size: int = 16
    value_range: str | None = None  # what float pixels of an array file mean
    seed: int = 0  # the noise a training run's generator draws from (as `ganpipe generate --seed`)


def _from_run(source: str, n: int, seed: int, tracking: TrackingConfig) -> ImageSet:
    """--n images drawn from the generator of the training run `source` names, from `seed`."""
    from ganpipe.gan import sampling
    from ganpipe.pipeline import generate

    with tempfile.TemporaryDirectory() as scratch:
        gen, origin = generate.load(source, tracking, Path(scratch))
    images = sampling.draw(gen.net, sampling.noise(n, gen.model.z_dim, seed, None),
                           sampling.requested_labels(n, None, gen), 500, progress=n > 5000)
    return ImageSet(f"{n} images from {origin} (seed {seed})", array=images, content="")


def _has_store() -> bool:
    import os

    from ganpipe.track.store import project_root

    return bool(os.environ.get("MLFLOW_TRACKING_URI")) or (project_root() / "mlflow.db").is_file()


def _side(given: str, req: Request, tracking: TrackingConfig) -> ImageSet:
    if Path(given).exists():
        return open_set(given, req.value_range).subset(req.n, twosets.SEED)
    store = _has_store()
    if "/" in given or Path(given).suffix or not store:
        raise SamplesError(f"{given}: no such folder or file" + ("" if store else
                           " (and no MLflow store here in which it could name a training run)"))
    return _from_run(given, req.n or DEFAULT_N_FROM_RUN, req.seed, tracking)


def run(req: Request, cfg: EvaluateConfig, tracking: TrackingConfig) -> dict:
    """The scores and their protocol ({'scores', 'protocol', 'real', 'fake'}); also written to --json."""
    if req.n is not None and req.n < 10:
        raise ConfigError(f"--n must be at least 10, got {req.n}")
    if req.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {req.batch_size}")
    torch.set_num_threads(cfg.threads)  # features (and the cached real ones) repeat for a fixed count only
    real, fake = _side(req.real, req, tracking), _side(req.fake, req, tracking)
    loaded: list[inception.FeatureNet] = []

    def net() -> inception.FeatureNet:  # loaded at most once, and only when something is not cached
        if not loaded:
            loaded.append(inception.load(inception.device()))
        return loaded[0]

    real_feats, hit = twosets.cached_features(real, net, req.batch_size, "real")
    note(f"real: {real.n} images ({'features from the cache' if hit else 'features computed and cached'} in "
         f"{twosets.cache_dir()})", err=True)  # stdout holds the table alone
    fake_feats = twosets.features(fake, net(), req.batch_size, "fake")
    with torch.no_grad():
        result = {"scores": twosets.score(real_feats, fake_feats, cfg),
                  "protocol": twosets.protocol(cfg, real.n, fake.n),
                  "real": {"source": real.label, "sha256": real.content or None},
                  "fake": {"source": fake.label, "sha256": fake.content or None}}
    if req.json:
        write_json(req.json, result)
    return result


def table(result: dict) -> str:
    """The scores as aligned text, then the protocol in one line."""
    p = result["protocol"]
    lines = [f"{scores.BY_KEY[k].label:<16}{scores.shown(k, v):>12}" for k, v in result["scores"].items()
             if k in scores.BY_KEY and v is not None]
    lines.append(f"protocol: {p['n_fake']} fake vs {p['n_real']} real images; Inception-V3 pool3, standard FID "
                 f"weights ({p['weights'].rsplit(' ', 1)[-1][:12]}), {p['resize']}; FID depends on n: compare only "
                 f"equal n")
    return "\n".join(lines)
