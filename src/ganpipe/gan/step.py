"""One training step of the GAN: train.d_steps updates of D, then one of G, then the EMA, with no host-device
synchronisation (no .item(), no Python branch on a tensor), so on a GPU the host queues the next step's kernels
while this one runs. The numbers of the step come back as one tensor that the loop sums on the device and reads
once per epoch.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ganpipe.distributed.group import Replicas
from ganpipe.gan import compiled, devices
from ganpipe.gan.augment import diff_augment
from ganpipe.gan.ema import EMA
from ganpipe.gan.losses import LOSSES, RELATIVISTIC, gradient_penalty, r1_penalty, zero_centred_penalty
from ganpipe.params.config import TrainConfig


def step_names(cfg: TrainConfig) -> list[str]:
    """The numbers each step returns, in order (the history's columns)."""
    return ["loss/d", "loss/g", "d/real", "d/fake"] + ["penalty/gp"] * (cfg.gp_weight > 0) \
        + ["penalty/r1"] * (cfg.r1_weight > 0) + ["penalty/r1", "penalty/r2"] * _rp_penalties(cfg)


def _rp_penalties(cfg: TrainConfig) -> bool:
    """R3GAN's R1 + R2 (train.gamma) are on: rpgan's own, exclusive of train.r1_weight (config refuses both)."""
    return cfg.loss == "rpgan" and cfg.gamma > 0


class Step:
    """G, D, their optimisers and the random streams of the noise and DiffAugment, as one callable step."""

    def __init__(self, G: nn.Module, D: nn.Module, cfg: TrainConfig, precision: str, z_dim: int, num_classes: int,
                 replicas: Replicas, noise_gen: torch.Generator, aug_gen: torch.Generator, ema: EMA | None):
        self.G, self.D, self.cfg, self.ema = G, D, cfg, ema
        self.z_dim, self.num_classes = z_dim, num_classes
        self.noise_gen, self.aug_gen = noise_gen, aug_gen
        device = next(G.parameters()).device
        self.device = device
        # fused: one kernel per step for all parameters instead of a handful per tensor
        self.opt_g = torch.optim.Adam(G.parameters(), lr=cfg.g_lr, betas=cfg.g_betas, fused=True)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.d_lr, betas=cfg.d_betas, fused=True)
        # DDP starts every rank from rank 0's weights (so this comes after any resume load); D's pass in G's
        # step is the plain D, not DDP's wrapper, whose reducer would wait for D gradients that never come.
        # Compiled (train.compile) are the three forward passes of every step; the penalties' double backward
        # stays eager (compiled graphs do not support it) and shares the same weights.
        self.G_fwd = compiled.wrap(replicas.wrap(G), cfg.compile)
        self.D_fwd = compiled.wrap(replicas.wrap(D), cfg.compile)
        self.D_for_g = compiled.wrap(D, cfg.compile)
        self.B = cfg.batch_size  # the global batch
        self.mine = replicas.part(cfg.batch_size)  # this rank's slice of each global batch and noise draw
        self.b = self.mine.stop - self.mine.start
        self.amp = lambda: devices.autocast(device, precision)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss]
        self.relativistic = cfg.loss in RELATIVISTIC  # G's loss also needs D's logits of the real batch

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.cfg.augment, self.aug_gen) if self.cfg.augment else x

    def optimizers_state(self) -> dict:
        return {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_optimizers(self, state: dict) -> None:
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    def __call__(self, real: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
        """real: this rank's slice of the batch, float [b, C, H, W] in [-1, 1]; y_real: int64 [b].
        Returns the step's numbers (step_names) as one float tensor on the device."""
        d_loss, logits_real, logits_fake, fake, y_fake, extra = self.d_step(real, y_real)
        g_loss = self.g_step(fake, y_fake, real, y_real)
        if self.ema is not None:
            self.ema.update()
        with torch.no_grad():
            return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(logits_real).mean(),
                                torch.sigmoid(logits_fake).mean(), *(v.detach() for _, v in extra)])

    def d_step(self, real: torch.Tensor, y_real: torch.Tensor) -> tuple:
        """train.d_steps updates of D; returns the last one's (d_loss, logits_real, logits_fake, fake, y_fake,
        penalties), its fakes still attached to G's graph for G's update."""
        cfg, B, mine, b, amp = self.cfg, self.B, self.mine, self.b, self.amp
        for i in range(cfg.d_steps):
            last = i == cfg.d_steps - 1
            z = torch.randn(B, self.z_dim, generator=self.noise_gen, device=self.device)[mine]
            y_fake = torch.randint(0, self.num_classes, (B,), generator=self.noise_gen, device=self.device)[mine]
            with amp():
                with torch.set_grad_enabled(last):  # the last fakes are reused for G's update below
                    fake = self.G_fwd(z, y_fake)
                # one D pass over [real; fake]: one large matmul per layer instead of two small ones
                logits = self.D_fwd(self.augment(torch.cat([real, fake.detach()])),
                                    torch.cat([y_real, y_fake])).float()
            logits_real, logits_fake = logits[:b], logits[b:]
            d_loss = self.d_loss_fn(logits_real, logits_fake)
            extra = self._penalties(real, fake, y_real, y_fake)
            for weight, value in extra:
                d_loss = d_loss + weight * value
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        return d_loss, logits_real, logits_fake, fake, y_fake, extra

    def g_step(self, fake: torch.Tensor, y_fake: torch.Tensor, real: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
        """One update of G through the just-updated D, on the D step's last fakes (no second G forward); a
        relativistic loss also scores the real batch (no gradient flows into it)."""
        self.D.requires_grad_(False)  # G's step needs gradients through D, not D's own weight gradients
        with self.amp():
            logits_gen = self.D_for_g(self.augment(fake), y_fake).float()
            if self.relativistic:
                with torch.no_grad():
                    logits_real = self.D_for_g(self.augment(real), y_real).float()
        g_loss = self.g_loss_fn(logits_gen, logits_real) if self.relativistic else self.g_loss_fn(logits_gen)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return g_loss

    def _penalties(self, real: torch.Tensor, fake: torch.Tensor, y_real: torch.Tensor,
                   y_fake: torch.Tensor) -> list[tuple[float, torch.Tensor]]:
        """(weight, value) of each gradient penalty that is on, in step_names order."""
        cfg, out = self.cfg, []
        critic: Callable[[torch.Tensor], torch.Tensor] = lambda x: self.D(self.augment(x), y_real)  # noqa: E731
        if cfg.gp_weight > 0:
            alpha = torch.rand(self.B, generator=self.noise_gen, device=self.device)[self.mine]
            with self.amp():
                out.append((cfg.gp_weight, gradient_penalty(critic, real, fake, alpha)))
        if cfg.r1_weight > 0:
            with self.amp():
                out.append((cfg.r1_weight, r1_penalty(critic, real)))
        if _rp_penalties(cfg):  # one pass of D over [real; fake] gives R1 and R2 per example
            both = lambda x: self.D(self.augment(x), torch.cat([y_real, y_fake]))  # noqa: E731
            with self.amp():
                per_example = zero_centred_penalty(both, torch.cat([real, fake.detach()]))
            b = real.shape[0]
            out += [(cfg.gamma, per_example[:b].mean()), (cfg.gamma, per_example[b:].mean())]
        return out
