"""Does a process's first parallel tanh give the same bytes as its later ones? Runs N fresh processes of each
kind; each runs a small DCGAN-like generator body (linear, batch norm, two transposed convolutions; seeded
weights) on two threads, then `torch.tanh` of its output twice, and reports whether the two differ. One kind
runs as a bare torch process; the other first calls `ganpipe.kernels.prime_vml()`, as importing ganpipe's
`gan` or `eval` package does. Exits 1 if any primed process differed.

  python checks/first_call.py [--processes 120] [--threads 2]

A fresh process is the point: the difference comes from the first call of an MKL VML function made from
several threads at once, so in one process only that first call is affected. About 1.5 s per process on
2 cores. src/ganpipe/kernels.py says what it found.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

import torch
from torch import nn


def one(threads: int, primed: bool) -> bool:
    """Whether the first tanh of this process differed from its second."""
    if primed:
        from ganpipe.kernels import prime_vml

        prime_vml()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(132, 32 * 7 * 7, bias=False), nn.BatchNorm1d(32 * 7 * 7), nn.ReLU(),
                         nn.Unflatten(1, (32, 7, 7)), nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(16), nn.ReLU(), nn.ConvTranspose2d(16, 1, 4, 2, 1)).eval()
    with torch.no_grad():
        x = body(torch.randn(100, 132, generator=torch.Generator().manual_seed(0)))
        return not torch.equal(torch.tanh(x), torch.tanh(x))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", choices=["bare", "primed"], help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args()
    if args.one:
        print(int(one(args.threads, args.one == "primed")))
        return 0
    off = {}
    for kind in ("bare", "primed"):
        off[kind] = sum(int(subprocess.run([sys.executable, __file__, "--one", kind, "--threads", str(args.threads)],
                                           capture_output=True, text=True, check=True).stdout)
                        for _ in range(args.processes))
    print(f"{args.processes} fresh processes of each kind, {args.threads} threads, torch {torch.__version__}: the first "
          f"tanh differed from the second in {off['bare']} bare processes ({off['bare'] / args.processes:.1%}) and "
          f"in {off['primed']} primed ones")
    return 1 if off["primed"] else 0


if __name__ == "__main__":
    sys.exit(main())
