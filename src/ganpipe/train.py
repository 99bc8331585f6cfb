"""The GAN training loop. It reports numbers through callbacks and knows nothing about MLflow or files.

Speed: the whole training set is one in-memory float tensor and batches are taken by indexing it, so there
is no per-item Dataset/DataLoader work; losses are summed as tensors and read once per epoch.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from ganpipe.config import ConfigError, TrainConfig
from ganpipe.data import to_float, to_uint8
from ganpipe.losses import LOSSES

LogFn = Callable[[int, dict[str, float]], None]  # (epoch, {"loss/d": ...})
ImageFn = Callable[[int, torch.Tensor], None]  # (epoch, uint8 [N, C, H, W] fixed-noise samples)


class DivergenceError(RuntimeError):
    """A loss became NaN or inf; training cannot continue from this state."""


@dataclass
class TrainResult:
    history: list[dict[str, float]]  # one row per epoch: epoch, loss/d, loss/g, d/real, d/fake
    steps: int  # G updates
    images_seen: int  # real images shown to D
    generator: nn.Module  # what sampling should use: the EMA copy of G when train.ema_decay is set, else G


class EMA:
    """An exponential moving average of G's weights, warmed up so early steps do not anchor it to the init."""

    def __init__(self, G: nn.Module, decay: float):
        self.model = copy.deepcopy(G).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._src = list(G.parameters())
        self._dst = list(self.model.parameters())

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        # warm-up: effective decay (1 + t) / (10 + t) until it reaches `decay` (as in tf.train.ExponentialMovingAverage)
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._dst, self._src, 1.0 - decay)

    @torch.no_grad()
    def recalibrate(self, z_dim: int, batch_size: int, batches: int = 16, seed: int = 0) -> None:
        """Recompute batch-norm statistics for the averaged weights.

        G's running statistics belong to G's own weights; used with the EMA weights they are wrong enough to
        ruin the samples. So they are re-estimated from fresh forward passes (cumulative average).
        """
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        g = torch.Generator().manual_seed(seed)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # None = plain average over the passes below
        self.model.train()
        for _ in range(batches):
            self.model(torch.randn(batch_size, z_dim, generator=g))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.model.eval()


def check_fits(cfg: TrainConfig, n_train: int) -> None:
    """Refuse a batch that cannot be filled from the data, before any work starts."""
    if cfg.batch_size > n_train:
        raise ConfigError(f"train.batch_size must be at most the {n_train} training images, got {cfg.batch_size}")


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fixed_noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """The same z every epoch and every run with this seed, so grids are comparable across epochs and runs."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def render(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G(z) in eval mode as uint8 [N, C, H, W]; restores G's previous mode."""
    was_training = G.training
    G.eval()
    images = to_uint8(G(z))
    G.train(was_training)
    return images


def train(
    G: nn.Module,
    D: nn.Module,
    images: torch.Tensor,  # uint8 [N, C, H, W], the training split
    cfg: TrainConfig,
    z_dim: int,
    log: LogFn = lambda epoch, metrics: None,
    log_images: ImageFn | None = None,
    grid_noise: torch.Tensor | None = None,
    progress: bool = True,
) -> TrainResult:
    check_fits(cfg, len(images))
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    real_all = to_float(images)  # [N, C, H, W] in [-1, 1], converted once
    d_loss_fn, g_loss_fn = LOSSES[cfg.loss]
    # fused: one kernel per step for all parameters instead of a handful per tensor
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.g_lr, betas=cfg.g_betas, fused=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.d_lr, betas=cfg.d_betas, fused=True)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    B = cfg.batch_size
    batches = len(real_all) // B  # drop the ragged last batch: batch-norm statistics stay comparable
    G.train()
    D.train()
    ema = EMA(G, cfg.ema_decay) if cfg.ema_decay is not None else None
    shown = ema.model if ema is not None else G  # the network grids (and later sampling) use
    history: list[dict[str, float]] = []
    steps = 0
    bar = tqdm(range(1, cfg.epochs + 1), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        perm = torch.randperm(len(real_all), generator=order_gen)
        sums = torch.zeros(4)  # loss/d, loss/g, d/real, d/fake, summed over steps
        for b in range(batches):
            real = real_all[perm[b * B : (b + 1) * B]]
            for i in range(cfg.d_steps):
                last = i == cfg.d_steps - 1
                with _autocast(cfg.precision):
                    with torch.set_grad_enabled(last):  # the last fakes are reused for G's update below
                        fake = G(torch.randn(B, z_dim))
                    # one D pass over [real; fake]: one large matmul per layer instead of two small ones
                    logits = D(torch.cat([real, fake.detach()])).float()
                logits_real, logits_fake = logits[:B], logits[B:]
                d_loss = d_loss_fn(logits_real, logits_fake)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
            D.requires_grad_(False)  # G's step needs gradients through D, not D's own weight gradients
            with _autocast(cfg.precision):
                logits_gen = D(fake).float()  # the updated D on the same fakes: one G forward per step
            g_loss = g_loss_fn(logits_gen)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            D.requires_grad_(True)
            if ema is not None:
                ema.update()
            steps += 1
            with torch.no_grad():
                sums += torch.stack([d_loss.detach(), g_loss.detach(),
                                     torch.sigmoid(logits_real).mean(), torch.sigmoid(logits_fake).mean()])
        row = dict(zip(("loss/d", "loss/g", "d/real", "d/fake"), (sums / batches).tolist()))
        if not all(math.isfinite(v) for v in row.values()):
            raise DivergenceError(f"training diverged at epoch {epoch}: {row}; lower the learning rates "
                                  f"(train.g_lr, train.d_lr) or try train.loss: hinge")
        history.append({"epoch": epoch, **row})
        if ema is not None:
            ema.recalibrate(z_dim, B)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
        log(epoch, row)
        if log_images is not None and grid_noise is not None:
            log_images(epoch, render(shown, grid_noise))
    return TrainResult(history=history, steps=steps, images_seen=steps * cfg.d_steps * B, generator=shown)
