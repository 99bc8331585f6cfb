"""Evaluation speed and memory: every metric for 10,000 generated vs 10,000 real images.

Real: the 5,000 embedded MNIST digits plus the same digits shifted by one pixel (10,000 distinct images).
Generated: the pipeline's samples (samples/samples.safetensors, from `dvc repro sample`). Classifier: the
pipeline's (models/classifier.safetensors). Features are computed once per set and shared by every metric.
Prints seconds per part and the process's peak resident memory.
Usage: python benchmarks/eval_speed.py [--threads 2]
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

from ganpipe.data import datasets
from ganpipe.data.samples import load_samples
from ganpipe.eval import classifier, protocol
from ganpipe.params import config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config.load(args.params)
    real = datasets.load_source(cfg.data).images
    real = torch.cat([real, torch.roll(real, shifts=1, dims=3)])[:10_000]
    fake = load_samples(cfg.paths.samples).images[:10_000]
    clf = classifier.load(cfg.paths.classifier)
    times = {}
    start = time.perf_counter()
    fake_e = protocol.embed(clf, fake, cfg.evaluate.batch_size)
    real_e = protocol.embed(clf, real, cfg.evaluate.batch_size)
    times["classifier features (2 x 10k images, once)"] = time.perf_counter() - start
    t0 = time.perf_counter()
    result = protocol.scores(fake_e, real_e, cfg.evaluate)
    times["every metric from the features"] = time.perf_counter() - t0
    total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(fake)} generated vs {len(real)} real, threads={args.threads}")
    for part, seconds in times.items():
        print(f"  {part:<45}{seconds:>7.2f} s")
    print(f"  {'total':<45}{total:>7.2f} s")
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")
    print("scores: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
