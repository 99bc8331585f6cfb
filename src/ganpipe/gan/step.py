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
from ganpipe.gan.augment.ada import Ada
from ganpipe.gan.augment.strength import Strength
from ganpipe.gan.ema import EMA
from ganpipe.gan.schedules import Values, ema_beta
from ganpipe.gan.losses import LOSSES, RELATIVISTIC, ada_evidence, gradient_penalty, r1_penalty, zero_centred_penalty
from ganpipe.params.config import TrainConfig


def step_names(cfg: TrainConfig) -> list[str]:
    """The numbers each step returns, in order (the history's columns)."""
    return ["loss/d", "loss/g", "d/real", "d/fake"] + ["penalty/gp"] * (cfg.gp_weight > 0) \
        + ["penalty/r1"] * (cfg.r1_weight > 0) + ["penalty/r1", "penalty/r2"] * _rp_penalties(cfg) \
        + ["augment/p", "augment/r_t"] * ("ada" in cfg.augment)


def _rp_penalties(cfg: TrainConfig) -> bool:
    """R3GAN's R1 + R2 (train.gamma) are on: rpgan's own, exclusive of train.r1_weight (config refuses both)."""
    return cfg.loss == "rpgan" and cfg.gamma > 0


class Step:
    """G, D, their optimisers, the random streams of the noise and the augmentation, and the values the schedules
    set (apply()), as one callable step."""

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
        self.ada = Ada(cfg.ada_pipe, aug_gen) if "ada" in cfg.augment else None
        self.strength = Strength(cfg.ada_p, cfg.ada_target, cfg.batch_size, device)
        self.replicas = replicas
        self.gamma = cfg.gamma
        self.ema_beta: float | None = None  # None: the EMA's own warmed-up constant decay (train.ema_decay)

    def apply(self, values: Values) -> None:
        """Train the next steps with these schedule values: learning rates and beta2 into the optimisers' groups
        (plain numbers: no synchronisation), gamma, the EMA's decay and ADA's scheduled p."""
        for opt, lr, beta2 in ((self.opt_g, values.g_lr, values.g_beta2), (self.opt_d, values.d_lr, values.d_beta2)):
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, (group["betas"][0], beta2)
        self.gamma = values.gamma
        if values.ema_halflife is not None:
            self.ema_beta = ema_beta(self.B, values.ema_halflife)
        if values.augment_p is not None:
            self.strength.set(values.augment_p)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.ada is not None:
            return self.ada(x, self.strength.p)
        return diff_augment(x, self.cfg.augment, self.aug_gen) if self.cfg.augment else x

    def optimizers_state(self) -> dict:
        """The optimisers' and ADA's state, for the resume checkpoint."""
        return {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "augment": self.strength.state_dict()}

    def load_optimizers(self, state: dict) -> None:
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if "augment" in state:  # checkpoints from before ADA have none
            self.strength.load_state_dict(state["augment"])

    def __call__(self, real: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
        """real: this rank's slice of the batch, float [b, C, H, W] in [-1, 1]; y_real: int64 [b].
        Returns the step's numbers (step_names) as one float tensor on the device."""
        d_loss, logits_real, logits_fake, fake, y_fake, extra = self.d_step(real, y_real)
        g_loss = self.g_step(fake, y_fake, real, y_real)
        if self.ema is not None:
            self.ema.update(self.ema_beta)
        with torch.no_grad():
            ada = [self.strength.p.clone(), torch.sign(ada_evidence(self.cfg.loss, logits_real, logits_fake)).mean()
                   ] if self.ada is not None else []
            self.strength.after_step(self.replicas)
            return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(logits_real).mean(),
                                torch.sigmoid(logits_fake).mean(), *(v.detach() for _, v in extra), *ada])

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
            if self.ada is not None:  # ADA's overfitting heuristic, r_t = E[sign(evidence)]
                self.strength.observe(ada_evidence(cfg.loss, logits_real.detach(), logits_fake.detach()))
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
            out += [(self.gamma, per_example[:b].mean()), (self.gamma, per_example[b:].mean())]
        return out
