"""GAN losses as pure functions of D's raw logits; LOSSES maps params.yaml's train.loss to (d_loss, g_loss).

D(x) = sigmoid(logit). With softplus(t) = log(1 + e^t): -log D(x) = softplus(-logit) and
-log(1 - D(x)) = softplus(logit), which never overflow (the seed's sigmoid + log does).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def bce_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """The seed's L_D = -[log D(x) + log(1 - D(G(z)))], averaged over the batch."""
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def saturating_g_loss(logits_fake: Tensor) -> Tensor:
    """Minimax L_G = log(1 - D(G(z))): the original objective, whose gradient vanishes when D wins."""
    return -F.softplus(logits_fake).mean()


def nonsaturating_g_loss(logits_fake: Tensor) -> Tensor:
    """The seed's L_G = -log D(G(z))."""
    return F.softplus(-logits_fake).mean()


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()


def hinge_g_loss(logits_fake: Tensor) -> Tensor:
    return -logits_fake.mean()


def lsgan_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Least squares (Mao et al.) with targets 1 for real and 0 for fake."""
    return 0.5 * ((logits_real - 1.0) ** 2).mean() + 0.5 * (logits_fake**2).mean()


def lsgan_g_loss(logits_fake: Tensor) -> Tensor:
    return 0.5 * ((logits_fake - 1.0) ** 2).mean()


DLoss = Callable[[Tensor, Tensor], Tensor]
GLoss = Callable[[Tensor], Tensor]

LOSSES: dict[str, tuple[DLoss, GLoss]] = {
    "bce": (bce_d_loss, saturating_g_loss),
    "nonsaturating": (bce_d_loss, nonsaturating_g_loss),
    "hinge": (hinge_d_loss, hinge_g_loss),
    "lsgan": (lsgan_d_loss, lsgan_g_loss),
}
