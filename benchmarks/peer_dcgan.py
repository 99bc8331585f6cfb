"""The peer baseline: pytorch/examples' DCGAN (dcgan/main.py), trained the way its README does.

torchvision ImageFolder with per-item transforms (Resize, CenterCrop, ToTensor, Normalize 0.5), a shuffling
DataLoader with 2 workers, batch 64, nz 100, ngf = ndf = 64, BCE on a sigmoid D with real label 1 and fake label
0, Adam lr 2e-4 betas (0.5, 0.999), N(0, 0.02) init, fp32. Its networks are written for 64x64; for 32x32 the
first G block and the last D block are dropped (nz -> ngf*4 at 4x4 -> ngf*2 -> ngf -> 3 at 32x32), the usual
CIFAR adaptation. Training stops after the first iteration past a wall-clock budget, so it can be given exactly
the time another trainer took.
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn


def _init(m: nn.Module) -> None:  # dcgan/main.py's weights_init
    name = m.__class__.__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def generator(nz: int = 100, ngf: int = 64, nc: int = 3, size: int = 32) -> nn.Module:
    layers: list[nn.Module] = []
    mult = size // 8  # 4 for 32x32, 8 for 64x64 (the example's own)
    layers += [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
    while mult > 1:
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
        mult //= 2
    layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
    G = nn.Sequential(*layers)
    G.apply(_init)
    return G


def discriminator(ndf: int = 64, nc: int = 3, size: int = 32) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    mult, side = 1, size // 2
    while side > 4:
        layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult * 2),
                   nn.LeakyReLU(0.2, inplace=True)]
        mult, side = mult * 2, side // 2
    layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    D = nn.Sequential(*layers)
    D.apply(_init)
    return D


def train(dataset, seconds: float, size: int = 32, batch_size: int = 64, workers: int = 2, seed: int = 0,
          nz: int = 100, device: str = "cpu", snapshots: tuple[float, ...] = (),
          snapshot: Callable[[nn.Module, float, dict], None] | None = None) -> tuple[nn.Module, dict]:
    """Train until `seconds` of wall-clock have passed; (G in eval mode, on the CPU; stats). At each of
    `snapshots` (seconds of training) `snapshot(G, budget, stats)` is called, off the clock, so one training
    stands for several shorter ones."""
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    G, D = generator(nz, size=size).to(device), discriminator(size=size).to(device)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    pending = sorted(b for b in snapshots if b < seconds)
    steps, epochs, images, paused = 0, 0, 0, 0.0
    start = time.perf_counter()
    clock = lambda: time.perf_counter() - start - paused  # noqa: E731  (training seconds, snapshots left out)
    while clock() < seconds:
        for real, _ in loader:
            real = real.to(device)
            b = real.size(0)
            # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
            D.zero_grad()
            err_real = criterion(D(real).view(-1), torch.full((b,), 1.0, device=device))
            err_real.backward()
            fake = G(torch.randn(b, nz, 1, 1, device=device))
            err_fake = criterion(D(fake.detach()).view(-1), torch.full((b,), 0.0, device=device))
            err_fake.backward()
            opt_d.step()
            # (2) update G: maximize log(D(G(z)))
            G.zero_grad()
            err_g = criterion(D(fake).view(-1), torch.full((b,), 1.0, device=device))
            err_g.backward()
            opt_g.step()
            steps, images = steps + 1, images + b
            if pending and clock() >= pending[0]:
                began = time.perf_counter()
                snapshot(G.eval(), pending.pop(0), {"steps": steps, "images_seen": images, "train_s": clock()})
                G.train()
                paused += time.perf_counter() - began
            if clock() >= seconds:
                break
        epochs += 1
    took = clock()
    return G.eval().cpu(), {"steps": steps, "epochs_started": epochs, "images_seen": images, "train_s": took,
                      "images_per_s": images / took, "loss_d": (err_real + err_fake).item(), "loss_g": err_g.item()}


@torch.no_grad()
def sample(G: nn.Module, n: int, seed: int = 0, nz: int = 100, batch: int = 500) -> torch.Tensor:
    """n images as uint8 [n, 3, H, W] (the range the example's Normalize(0.5) maps back from)."""
    g = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same noise whatever device G is on
    device = next(G.parameters()).device
    out = [G(torch.randn(min(batch, n - i), nz, 1, 1, generator=g).to(device)).cpu() for i in range(0, n, batch)]
    return ((torch.cat(out).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
