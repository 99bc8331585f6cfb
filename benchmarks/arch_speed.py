"""Training speed per architecture, batch size and precision on this machine, plus the MLP's achieved FLOP/s.

For each of the seed's MLP and the default DCGAN (the params.yaml config; the MLP from
configs/seed_recipe.yaml) at batch 64 and 256, in fp32 and bf16: images/s of ganpipe's training loop
(real images shown to D per second, EMA off). For the MLP at batch 256 it also counts the FLOPs of one
training step (torch's FlopCounterMode: every matmul that actually runs, forward and backward) and divides the
achieved FLOP/s by this machine's fp32 matmul peak, measured here on a large square product.

Usage: python benchmarks/arch_speed.py [--steps 60] [--threads 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganpipe.data import datasets, split
from ganpipe.gan.models import build
from ganpipe.gan.train import train
from ganpipe.params import config, overlays


def matmul_peak(dtype: torch.dtype, device: str, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of an n x n x n product, the best of `reps` (the machine's practical peak for this dtype)."""
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for _ in range(reps + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def run(model_cfg, train_cfg, train_split, steps: int) -> tuple[float, int]:
    """(images/s over ~`steps` steps, after 5 untimed warm-up steps; FLOPs of one training step)."""
    B = train_cfg.batch_size
    shape, one = tuple(train_split.images.shape[1:]), dataclasses.replace(train_cfg, epochs=1)
    G, D = build(model_cfg, shape, 0, 10)
    train(G, D, train_split.images[: 5 * B], one, model_cfg.z_dim, labels=train_split.labels[: 5 * B])
    G, D = build(model_cfg, shape, 0, 10)
    with FlopCounterMode(display=False) as counter:
        train(G, D, train_split.images[:B], one, model_cfg.z_dim, labels=train_split.labels[:B])
    epochs = max(1, round(steps * B / len(train_split.images)))
    G, D = build(model_cfg, shape, 0, 10)
    if train_cfg.device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = train(G, D, train_split.images, dataclasses.replace(train_cfg, epochs=epochs), model_cfg.z_dim,
                   labels=train_split.labels)
    if train_cfg.device == "cuda":
        torch.cuda.synchronize()
    return result.images_seen / (time.perf_counter() - start), counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config.load(args.params)
    train_split = split.split_holdout(datasets.load_source(cfg.data), cfg.data.holdout_fraction, cfg.data.seed)[0]
    seed = config.from_dict(overlays.merge(cfg.raw, overlays.read(Path("configs/seed_recipe.yaml"))))
    peak32 = matmul_peak(torch.float32, args.device)
    peak16 = matmul_peak(torch.bfloat16, args.device)
    print(f"device={args.device} threads={args.threads} steps~{args.steps}; matmul peak: fp32 "
          f"{peak32 / 1e9:.0f} GFLOP/s, bf16 {peak16 / 1e9:.0f} GFLOP/s")
    print(f"{'model':<14}{'batch':>6}{'fp32 img/s':>12}{'bf16 img/s':>12}{'bf16/fp32':>11}")
    for name, run_cfg in (("seed mlp", seed), ("default dcgan", cfg)):
        for batch in (64, 256):
            base = dataclasses.replace(run_cfg.train, threads=args.threads, ema_decay=None, batch_size=batch,
                                       device=args.device)
            speed, flops = {}, {}
            for precision in ("fp32", "bf16"):
                speed[precision], flops[precision] = run(run_cfg.model, dataclasses.replace(base, precision=precision),
                                                         train_split, args.steps)
            print(f"{name:<14}{batch:>6}{speed['fp32']:>12.0f}{speed['bf16']:>12.0f}"
                  f"{speed['bf16'] / speed['fp32']:>10.2f}x")
            if name == "seed mlp" and batch == 256:
                for precision in ("fp32", "bf16"):
                    achieved = flops[precision] * speed[precision] / batch  # FLOPs per step x steps per second
                    print(f"{'':<14}  {precision}: {flops[precision] / 1e9:.2f} GFLOP per step, "
                          f"{achieved / 1e9:.0f} GFLOP/s = {achieved / peak32:.0%} of the fp32 matmul peak")


if __name__ == "__main__":
    main()
