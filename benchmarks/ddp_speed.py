"""Training throughput on 1 process vs several (torchrun + DistributedDataParallel), same global batch.

Each arm is PROCESSESxTHREADS (e.g. 1x2: one process of 2 threads; 2x1: two processes of 1 thread, gloo);
a `d` suffix (1x2d) runs one process under torchrun, so the DDP path (process group, gradient all-reduce) runs
with nothing to average: its cost alone. The default model and data of params.yaml (data/prepared: run `make
repro` or `dvc repro prepare` first); epoch 1 is warm-up, images/s is over the other epochs; the final losses
are the global-batch means every rank agrees on.
Usage: python benchmarks/ddp_speed.py [--arms 1x2 2x1 1x1 1x2d] [--epochs 4] [--device cpu]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganpipe.data.prepared import read_prepared
from ganpipe.distributed.group import joined
from ganpipe.gan.models import build
from ganpipe.gan.train import Hooks, train
from ganpipe.params import config


def worker(args: argparse.Namespace) -> None:
    cfg = config.load(args.params)
    tc = dataclasses.replace(cfg.train, processes=args.processes, threads=args.threads, epochs=args.epochs,
                             device=args.device, checkpoint_every_s=86_400, grid_every_s=86_400)
    info, split, _ = read_prepared(cfg.paths.prepared)
    G, D = build(cfg.model, tuple(info["image_shape"]), tc.seed, info["num_classes"])
    stamps: list[float] = []

    def log(epoch: int, row: dict) -> None:
        if tc.device != "cpu":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    with joined(tc) as replicas:
        result = train(G, D, split.images, tc, cfg.model.z_dim, labels=split.labels, hooks=Hooks(log=log),
                       replicas=replicas)
        if replicas.main:
            per_epoch = len(split.images) // tc.batch_size * tc.batch_size * tc.d_steps
            Path(args.out).write_text(json.dumps({
                "images_per_s": per_epoch * (len(stamps) - 1) / (stamps[-1] - stamps[0]),
                "world": replicas.world, "backend": replicas.backend or "none",
                "final": {k: v for k, v in result.history[-1].items() if k != "epoch"}}))


def arm(spec: str, args: argparse.Namespace) -> dict:
    processes, threads = (int(x) for x in spec.rstrip("d").split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        me = [str(Path(__file__).resolve()), "--worker", "--processes", str(processes), "--threads", str(threads),
              "--epochs", str(args.epochs), "--device", args.device, "--params", args.params, "--out", str(out)]
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                     str(processes)] if processes > 1 or spec.endswith("d") else [sys.executable])
        subprocess.run(launcher + me, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=["1x2", "2x1", "1x1", "1x2d"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    cfg = config.load(args.params)
    print(f"device={args.device} model={cfg.model.arch} global batch={cfg.train.batch_size} "
          f"precision={cfg.train.precision} epochs={args.epochs} (epoch 1 not timed)")
    print(f"{'arm':<8}{'backend':>8}{'images/s':>10}{'loss/d':>10}{'loss/g':>10}{'d/real':>9}{'d/fake':>9}")
    for spec in args.arms:
        r = arm(spec, args)
        f = r["final"]
        print(f"{spec:<8}{r['backend']:>8}{r['images_per_s']:>10.0f}{f['loss/d']:>10.4f}{f['loss/g']:>10.4f}"
              f"{f['d/real']:>9.4f}{f['d/fake']:>9.4f}", flush=True)


if __name__ == "__main__":
    main()
