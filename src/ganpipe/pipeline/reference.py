"""Stage `reference`: the Inception-V3 features of the prepared training and held-out splits (eval/reference.py),
each capped to evaluate.reference_n images, once per data hash; with evaluate.features = classifier it records that none are needed."""
from __future__ import annotations

import time

import torch

from ganpipe.data.prepared import read_prepared
from ganpipe.eval import inception, reference
from ganpipe.params.config import Config


def run(cfg: Config) -> dict:
    torch.set_num_threads(cfg.evaluate.threads)  # the features repeat bitwise for a fixed count only
    info, train_split, holdout = read_prepared(cfg.paths.prepared)
    out, cap = cfg.paths.inception_reference, cfg.evaluate.reference_n
    if not cfg.evaluate.uses("inception"):
        reference.save(out, None, None, info["sha256"], cfg.evaluate.features, cap)
        return {"computed": False, "reason": f"evaluate.features is {cfg.evaluate.features}"}
    net = inception.load(inception.device())
    start = time.perf_counter()
    train_f, hold_f = reference.compute(net, reference.capped(train_split.images, train_split.labels, cap, "train"),
                                        reference.capped(holdout.images, holdout.labels, cap, "holdout"),
                                        cfg.evaluate.inception_batch)
    seconds = time.perf_counter() - start
    reference.save(out, train_f, hold_f, info["sha256"], cfg.evaluate.features, cap)
    n = len(train_f) + len(hold_f)
    return {"computed": True, "images": n, "seconds": round(seconds, 1), "images_per_s": round(n / seconds, 2)}
