"""An exponential moving average of G's weights: what sampling and evaluation use when train.ema_decay or
train.ema_halflife is set."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Averaged weights, warmed up so early steps do not anchor the average to the random init."""

    def __init__(self, G: nn.Module, decay: float):
        self.model = copy.deepcopy(G).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._G = G
        self._src = list(G.parameters())
        self._dst = list(self.model.parameters())

    @torch.no_grad()
    def update(self, decay: float | None = None) -> None:
        """One step of the average; `decay`: this step's (R3GAN's half-life schedule), else the warmed-up constant."""
        self.updates += 1
        if decay is None:
            # warm-up: effective decay (1 + t) / (10 + t) until it reaches `decay` (tf.train.ExponentialMovingAverage)
            decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._dst, self._src, 1.0 - decay)

    @torch.no_grad()
    def recalibrate(self, z_dim: int, batch_size: int, num_classes: int, batches: int = 16, seed: int = 0) -> None:
        """Make the averaged weights' buffers match the averaged weights.

        Batch norm: G's running statistics belong to G's own weights; used with the EMA weights they are wrong
        enough to ruin the samples, so they are re-estimated from fresh forward passes (cumulative average).
        Spectral norm: the power-iteration vectors start from G's and are refined by the same passes.
        """
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        power = {name: buf for name, buf in self.model.named_buffers() if name.endswith(("_u", "_v"))}
        if not norms and not power:
            return
        source = dict(self._G.named_buffers())
        for name, buf in power.items():
            buf.copy_(source[name])
        device = self._dst[0].device
        g = torch.Generator(device=device).manual_seed(seed)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # None = plain average over the passes below
        self.model.train()
        for _ in range(batches):
            z = torch.randn(batch_size, z_dim, generator=g, device=device)
            y = torch.randint(0, num_classes, (batch_size,), generator=g, device=device)
            self.model(z, y)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.model.eval()

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
