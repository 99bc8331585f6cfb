"""Two image sets scored against each other in Inception-V3 space (`ganpipe score REAL FAKE`): FID, FID-infinity,
KID, precision/recall/density/coverage and copy detection, with the protocol written beside the numbers.

The real set's features are cached by content hash (the file names and bytes, and the network and resize), so
scoring many fake sets against one real set runs the network over the real images once. Copy detection needs
held-out real images to set its threshold: a fixed 10% of the real set is held out for it alone.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganpipe.data.imagesets import ImageSet
from ganpipe.eval import copying, inception, standard
from ganpipe.files import atomic
from ganpipe.params.config import EvaluateConfig

HELD_SHARE = 0.1  # of the real set, held out to set the copy threshold (and scored against the rest)
SEED = 0  # the held-out split and any --n subset are drawn from this seed alone


def cache_dir() -> Path:
    """$GANPIPE_CACHE, else $XDG_CACHE_HOME/ganpipe, else ~/.cache/ganpipe: features of real sets."""
    if os.environ.get("GANPIPE_CACHE"):
        return Path(os.environ["GANPIPE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganpipe"


def cache_key(images: ImageSet) -> str:
    """The cache entry of a set's features: its content and every part of the feature protocol."""
    what = json.dumps({"content": images.content, "protocol": inception.PROTOCOL, "set": "rgb-own-size"},
                      sort_keys=True)
    return hashlib.sha256(what.encode()).hexdigest()


def features(images: ImageSet, net: inception.FeatureNet, batch_size: int, what: str,
             progress: bool = True) -> torch.Tensor:
    """float32 [N, 2048] features of every image of the set, in the set's order."""
    from tqdm import tqdm

    device = next(net.parameters()).device
    out = torch.empty(images.n, inception.FEATURE_DIM)
    with torch.inference_mode(), tqdm(total=images.n, desc=f"Inception-V3: {what}", unit="img",
                                      disable=not progress, mininterval=5) as bar:
        for indices, batch in images.batches(batch_size):
            out[indices] = net(batch.to(device)).float().cpu()
            bar.update(len(indices))
    return out


def cached_features(images: ImageSet, net_factory, batch_size: int, what: str) -> tuple[torch.Tensor, bool]:
    """(features, whether they came from the cache); computed and cached when not there (or unreadable)."""
    path = cache_dir() / "features" / f"{cache_key(images)}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["features"], True
        except (SafetensorError, OSError, KeyError):
            pass  # a damaged entry is recomputed and replaced
    feats = features(images, net_factory(), batch_size, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic(path) as tmp:
        save_file({"features": feats.contiguous()}, str(tmp), metadata={"set": images.label[:500]})
    return feats, False


def held_out(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(reference indices, held-out indices) of a real set of n: a fixed HELD_SHARE of it held out."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SEED))
    held = max(1, round(n * HELD_SHARE))
    return order[held:].sort().values, order[:held].sort().values


def score(real: torch.Tensor, fake: torch.Tensor, cfg: EvaluateConfig) -> dict:
    """Every score of `fake` against `real` (features): the distribution scores against all of the real set,
    copy detection against its reference part with the threshold from its held-out part."""
    ref, held = held_out(len(real))
    copy, _, _ = copying.scores(real[ref], real[held], fake, cfg.copy_quantile, cfg.copy_cells)
    return {**standard.distribution_scores(fake, real, cfg), **copy}


def protocol(cfg: EvaluateConfig, n_real: int, n_fake: int) -> dict:
    """How the numbers were made, written beside them."""
    ref, held = held_out(n_real)
    base = standard.protocol(cfg, n_fake, n_real, 0)
    keep = ("network", "weights", "resize", "value_range", "grey", "dtype", "feature_dim", "fid_note",
            "fid_infinity", "kid", "precision_recall_k", "density_coverage_k", "knn_sets", "copy")
    out = {k: base[k] for k in keep}
    out.update(n_real=n_real, n_fake=n_fake, reference="the whole real set (FID, KID, k-NN scores)",
               images="decoded with Pillow, converted to RGB (alpha dropped, grey repeated), kept at their own "
                      "size; the network's resize is the only one",
               copy_split={"reference": len(ref), "held_out": len(held), "seed": SEED,
                           "why": "the copy threshold is a quantile of held-out real images' distances"})
    return out
