"""bf16 vs fp32 training of the default config at the same number of steps: speed and sample quality.

Trains the params.yaml model twice from the same seed (fp32, then bf16 autocast), samples both with the
same noise and scores them with the pipeline's evaluation (classifier from `dvc repro train_classifier`).
Usage: python benchmarks/precision_quality.py [--epochs 20] [--samples 5000]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from ganpipe.data import prepared
from ganpipe.eval import classifier, protocol
from ganpipe.gan import sampling
from ganpipe.gan.models import build
from ganpipe.gan.train import train
from ganpipe.params import config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    cfg = config.load(args.params)
    folder = cfg.paths.prepared
    info = prepared.read_info(folder)
    train_split, holdout = (prepared.load_split(folder / f) for f in (prepared.TRAIN_FILE, prepared.HOLDOUT_FILE))
    clf = classifier.load(cfg.paths.classifier)
    shape, k = tuple(info["image_shape"]), info["num_classes"]
    print(f"default config, {args.epochs} epochs, batch {cfg.train.batch_size}, threads {cfg.train.threads}, "
          f"{args.samples} samples scored against the held-out split")
    print(f"{'precision':<10}{'train s':>9}{'img/s':>8}{'IS':>7}{'FID':>8}{'KL':>8}{'agree':>8}")
    for precision in ("fp32", "bf16"):
        train_cfg = dataclasses.replace(cfg.train, precision=precision, epochs=args.epochs, device="cpu")
        G, D = build(cfg.model, shape, train_cfg.seed, k)
        start = time.perf_counter()
        result = train(G, D, train_split.images, train_cfg, cfg.model.z_dim, labels=train_split.labels)
        seconds = time.perf_counter() - start
        gen = sampling.Generator(result.generator, cfg.model, k, shape)
        labels = sampling.requested_labels(args.samples, None, gen)
        fake = sampling.generate(result.generator, args.samples, cfg.model.z_dim, 0, cfg.sample.batch_size, labels)
        s = protocol.evaluate(clf, fake, holdout.images, train_split.images, cfg.evaluate, labels,
                              holdout.labels, train_split.labels)[0]["fake"]  # (scores, copy distances)
        agree = s.get("class_agreement", float("nan"))
        print(f"{precision:<10}{seconds:>9.0f}{result.images_seen / seconds:>8.0f}{s['is']:>7.2f}{s['fid']:>8.1f}"
              f"{s['kl_uniform']:>8.4f}{agree:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
