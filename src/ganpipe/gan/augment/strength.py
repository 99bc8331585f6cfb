"""ADA's strength p: fixed, scheduled (R3GAN's presets; gan/schedules.py sets it each step) or adaptive.

Adaptive (StyleGAN2-ADA's heuristic): r_t = E[sign(D(augmented real))] says how sure D is of the training images;
above the target (0.6) D is overfitting them. Under a loss whose logits have no fixed boundary (rpgan, wgan-gp)
the sign is of D(real) - D(its paired fake) instead (gan/losses.py, ada_evidence). Every INTERVAL steps p moves
by batch x INTERVAL / SPEED_IMAGES towards keeping r_t at the target (up when above it, down when below), so it
can go from 0 to 1 in SPEED_IMAGES images. p stays a tensor on the device and its adjustment is tensor
arithmetic: no step waits for the device.
Its state (p and the signs gathered since the last adjustment) is part of the resume checkpoint, so a resumed
run goes on with the same p (the official code restarts it from its initial value: stylegan2-ada-pytorch #81).
"""
from __future__ import annotations

import torch

from ganpipe.distributed.group import Replicas

INTERVAL = 4  # steps between adjustments (the official ada_interval)
SPEED_IMAGES = 500_000  # images over which p can move by 1 (the official ada_kimg = 500)


def adjusted(p: torch.Tensor, r_t: torch.Tensor, target: float, images: int) -> torch.Tensor:
    """p after one adjustment, given the heuristic r_t over the last `images` images; kept in [0, 1]."""
    return (p + torch.sign(r_t - target) * images / SPEED_IMAGES).clamp(0, 1)


class Strength:
    """p as a 0-dim float32 tensor on the device, and the heuristic's running sums."""

    def __init__(self, p: float, target: float | None, batch: int, device: torch.device):
        self.p = torch.tensor(float(p), device=device)
        self.target, self.batch = target, batch
        self.signs = torch.zeros(2, device=device)  # signs' sum and count since the last adjustment
        self.steps = 0

    def set(self, value: float) -> None:
        """A scheduled value (fill_ from a Python number: no synchronisation)."""
        self.p.fill_(value)

    def observe(self, evidence: torch.Tensor) -> None:
        """Gather one D step's per-image evidence (losses.ada_evidence: > 0 where D is sure of a real image)."""
        if self.target is not None:
            self.signs += torch.stack([torch.sign(evidence.detach()).sum(), torch.tensor(
                float(evidence.numel()), device=evidence.device)])

    def after_step(self, replicas: Replicas) -> None:
        """Count a step; every INTERVAL steps adjust p from every rank's signs (one all-reduce)."""
        self.steps += 1
        if self.target is None or self.steps % INTERVAL:
            return
        total = replicas.mean_(self.signs.clone())  # mean over ranks: the ratio of sums is unchanged
        r_t = total[0] / total[1].clamp(min=1)
        self.p.copy_(adjusted(self.p, r_t, self.target, self.batch * INTERVAL))
        self.signs.zero_()

    def state_dict(self) -> dict:
        return {"p": self.p.detach().cpu().clone(), "signs": self.signs.detach().cpu().clone(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.p.copy_(state["p"])
        self.signs.copy_(state["signs"])
        self.steps = int(state["steps"])
