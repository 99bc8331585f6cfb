"""What FID's linear algebra costs in the 2048-d Inception space, at the set sizes ganpipe scores.

Random features against a 4,500-image reference (the size of a digits or CIFAR training split). For each n: FID
by the F x F square-root path (metrics.frechet_distance on the set's covariance), by the path ganpipe takes
(metrics.frechet_distance_to: an N x N matrix when N <= F, since the covariance then has rank below N), the two
values, and FID extrapolated to infinite n (15 FIDs of subsets from 0.2 n to n).

  python benchmarks/fid_speed.py [--n 300 500 5000] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from ganpipe.eval import metrics

DIM, REF = 2048, 4500


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[300, 500, 5000])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    mu, sigma = metrics.feature_stats(torch.randn(REF, DIM, generator=g))
    print(f"{DIM}-d features, reference {REF}, threads {args.threads}")
    for n in args.n:
        x = torch.randn(n, DIM, generator=g) * 1.1 + 0.1
        full, t_full = timed(lambda: metrics.frechet_distance(*metrics.feature_stats(x), mu, sigma))
        ours, t_ours = timed(metrics.frechet_distance_to, x, mu, sigma)
        (inf, _, _), t_inf = timed(metrics.fid_infinity, x, mu, sigma, 15)
        print(f"n={n:5d}: FID {full:.4f} by the F x F path in {t_full:.2f} s, {ours:.4f} by ganpipe's in "
              f"{t_ours:.2f} s (relative difference {abs(ours - full) / full:.1e}); FID-infinity {inf:.4f} in "
              f"{t_inf:.2f} s")


if __name__ == "__main__":
    main()
