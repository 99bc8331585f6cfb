"""Training throughput: ganpipe's loop vs a plain PyTorch loop with a per-item torchvision-style Dataset.

Same model, same loss, same batch size, same thread count, on the default data. Prints images/s (real images
shown to D per second) and the CPU's bf16 verdict; bf16 is measured only where it is native (emulated, it is
about 20x slower: benchmarks/precision_speed.py measures that). Usage:
python benchmarks/train_speed.py [--steps 150] [--threads 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ganpipe.data import datasets, split
from ganpipe.gan import devices
from ganpipe.gan.losses import LOSSES
from ganpipe.gan.models import build
from ganpipe.gan.train import train
from ganpipe.params import config, overlays


class PerItemMNIST(Dataset):
    """What a torchvision-style dataset does: one PIL image per item, ToTensor + Normalize per item."""

    def __init__(self, train_split: split.Split):
        self.images, self.labels = train_split.images[:, 0].numpy(), train_split.labels.tolist()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[i], mode="L")
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)  # ToTensor
        return (x - 0.5) / 0.5, self.labels[i]  # Normalize((0.5,), (0.5,))


def plain_loop(model_cfg, train_cfg, train_split, steps: int, warmup: int = 10) -> float:
    """The loop of pytorch/examples' dcgan: DataLoader batches, D on real and fake, G reusing the fakes."""
    G, D = build(model_cfg, tuple(train_split.images.shape[1:]), 0, 10)
    d_loss_fn, g_loss_fn = LOSSES[train_cfg.loss]
    opt_g = torch.optim.Adam(G.parameters(), lr=train_cfg.g_lr, betas=train_cfg.g_betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=train_cfg.d_lr, betas=train_cfg.d_betas)
    loader = DataLoader(PerItemMNIST(train_split), batch_size=train_cfg.batch_size, shuffle=True, drop_last=True)
    done, start = 0, 0.0
    while done < steps + warmup:
        for real, y in loader:
            z = torch.randn(len(real), model_cfg.z_dim)
            y_fake = torch.randint(0, 10, (len(real),))
            fake = G(z, y_fake)
            d_loss = d_loss_fn(D(real, y), D(fake.detach(), y_fake))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = g_loss_fn(D(fake, y_fake))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            done += 1
            if done == warmup:  # first steps build oneDNN kernels: not timed, in either loop
                start = time.perf_counter()
            if done == steps + warmup:
                break
    return steps * train_cfg.batch_size / (time.perf_counter() - start)


def ours(model_cfg, train_cfg, train_split, steps: int) -> float:
    batches = len(train_split.images) // train_cfg.batch_size
    G, D = build(model_cfg, tuple(train_split.images.shape[1:]), 0, 10)
    warm = 10 * train_cfg.batch_size  # warm-up: 10 steps, not timed
    train(G, D, train_split.images[:warm], dataclasses.replace(train_cfg, epochs=1), model_cfg.z_dim,
          labels=train_split.labels[:warm])
    cfg = dataclasses.replace(train_cfg, epochs=max(1, round(steps / batches)))
    G, D = build(model_cfg, tuple(train_split.images.shape[1:]), 0, 10)
    start = time.perf_counter()
    result = train(G, D, train_split.images, cfg, model_cfg.z_dim, labels=train_split.labels)
    return result.images_seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=140)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config.load(args.params)
    train_split = split.split_holdout(datasets.load_source(cfg.data), cfg.data.holdout_fraction, cfg.data.seed)[0]
    seed_tree = overlays.merge(cfg.raw, overlays.read(Path("configs/seed_recipe.yaml")))
    seed = config.from_dict(seed_tree)
    native, fact = devices.bf16_support(torch.device("cpu"))
    print(f"threads={args.threads} steps~{args.steps} batch={cfg.train.batch_size} bf16 {fact} (images/s, higher "
          f"is better)")
    print(f"{'model':<10}{'plain DataLoader fp32':>24}{'ganpipe fp32':>22}{'ganpipe bf16':>22}")
    for name, run_cfg in (("default", cfg), ("seed mlp", seed)):
        model_cfg = run_cfg.model
        base_cfg = dataclasses.replace(run_cfg.train, threads=args.threads, ema_decay=None, device="cpu")
        plain = plain_loop(model_cfg, base_cfg, train_split, args.steps)
        fp32 = ours(model_cfg, dataclasses.replace(base_cfg, precision="fp32"), train_split, args.steps)
        if not native:
            print(f"{name:<10}{plain:>24.0f}{fp32:>13.0f} ({fp32 / plain:.2f}x){'emulated: not run':>22}")
            continue
        bf16 = ours(model_cfg, dataclasses.replace(base_cfg, precision="bf16"), train_split, args.steps)
        print(f"{name:<10}{plain:>24.0f}{fp32:>13.0f} ({fp32 / plain:.2f}x){bf16:>13.0f} ({bf16 / plain:.2f}x)")


if __name__ == "__main__":
    main()
