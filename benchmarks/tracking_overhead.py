"""MLflow logging overhead: the train stage's time inside tracking calls (params, per-epoch metrics, per-epoch
image grids, tags, the final model) as a share of training time, on a throwaway sqlite store.

Usage: python benchmarks/tracking_overhead.py [--epochs 5]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from ganpipe.data import datasets, split
from ganpipe.data.images import make_grid
from ganpipe.gan import sampling
from ganpipe.gan.models import build
from ganpipe.gan.train import Hooks, fixed_noise, train
from ganpipe.params import config
from ganpipe.track import tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    cfg = config.load(args.params)
    train_cfg = dataclasses.replace(cfg.train, epochs=args.epochs)
    train_split = split.split_holdout(datasets.load_source(cfg.data), cfg.data.holdout_fraction, cfg.data.seed)[0]
    rows = cfg.sample.grid_rows
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        os.environ["DVC_ROOT"] = tmp  # artifacts go under the throwaway folder
        start = time.perf_counter()
        with tracking.start_run(cfg.tracking, run_name="overhead-bench", params=cfg.logged(), tags={"b": "1"}) as run:
            setup = time.perf_counter() - start
            shape = tuple(train_split.images.shape[1:])
            G, D = build(cfg.model, shape, train_cfg.seed, 10)
            t0, before = time.perf_counter(), run.seconds
            result = train(G, D, train_split.images, train_cfg, cfg.model.z_dim, labels=train_split.labels,
                           hooks=Hooks(log=run.log_metrics,
                                       log_images=lambda e, imgs: run.log_image(e, "samples", make_grid(imgs, rows)),
                                       grid=fixed_noise(rows * rows, cfg.model.z_dim, 0, 10)))
            weights = Path(tmp) / "generator.safetensors"  # logged as the train stage logs it
            sampling.save_generator(result.generator, weights, cfg.model, shape, 10)
            run.log_generator(weights, shape)
            total = time.perf_counter() - t0
    in_loop = run.seconds - before
    print(f"epochs={args.epochs} training+logging {total:.1f}s, of which inside MLflow calls {in_loop:.2f}s "
          f"({100 * in_loop / (total - in_loop):.1f}% of training time)")
    print(f"one-off store set-up (connect, create experiment/run, log params): {setup:.1f}s")


if __name__ == "__main__":
    main()
