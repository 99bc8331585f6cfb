"""Stage `reference`: the Inception-V3 features of the prepared training and held-out splits (eval/reference.py),
once per data hash; with evaluate.features = classifier it records that none are needed."""
from __future__ import annotations

import time

from ganpipe.data.prepared import read_prepared
from ganpipe.eval import inception, reference
from ganpipe.params.config import Config


def run(cfg: Config) -> dict:
    info, train_split, holdout = read_prepared(cfg.paths.prepared)
    out = cfg.paths.inception_reference
    if not cfg.evaluate.uses("inception"):
        reference.save(out, None, None, info["sha256"], cfg.evaluate.features)
        return {"computed": False, "reason": f"evaluate.features is {cfg.evaluate.features}"}
    net = inception.load(inception.device())
    start = time.perf_counter()
    train_f = inception.features(net, train_split.images, cfg.evaluate.inception_batch, "training split")
    hold_f = inception.features(net, holdout.images, cfg.evaluate.inception_batch, "held-out split")
    seconds = time.perf_counter() - start
    reference.save(out, train_f, hold_f, info["sha256"], cfg.evaluate.features)
    n = len(train_f) + len(hold_f)
    return {"computed": True, "images": n, "seconds": round(seconds, 1), "images_per_s": round(n / seconds, 2)}
