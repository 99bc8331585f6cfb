"""GAN losses as pure functions of D's raw logits; LOSSES maps params.yaml's train.loss to (d_loss, g_loss).
The gradient penalties (WGAN-GP, R1) are pure functions of a critic and its inputs.

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


def wasserstein_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """WGAN critic loss E[D(G(z))] - E[D(x)] (Arjovsky et al.); D's output is an unbounded score."""
    return logits_fake.mean() - logits_real.mean()


def wasserstein_g_loss(logits_fake: Tensor) -> Tensor:
    return -logits_fake.mean()


def _input_grad_norms(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """||d critic(x_i) / d x_i||_2 per example, differentiable (create_graph) so the penalty can be trained."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).float().sum(), x, create_graph=True)
    return grad.flatten(1).float().norm(dim=1)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al.): E[(||grad D(x_hat)|| - 1)^2] at x_hat = alpha*real + (1-alpha)*fake, with
    one alpha in [0, 1] per example (shape [B]); the caller multiplies by lambda."""
    a = alpha.view(-1, *([1] * (real.ndim - 1))).to(real.dtype)
    x_hat = a * real.detach() + (1 - a) * fake.detach()
    return ((_input_grad_norms(critic, x_hat) - 1.0) ** 2).mean()


def zero_centred_penalty(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """0.5 * ||grad D(x_i)||^2 per example [B], differentiable: R1 where x are real images, R2 where they are
    fakes (R3GAN penalises both, gamma/2 * (R1 + R2)). One pass of the critic can serve both halves of a
    [real; fake] batch, since no D here mixes examples (no batch statistics)."""
    return 0.5 * _input_grad_norms(critic, x) ** 2


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): 0.5 * E[||grad D(x)||^2] at real images; the caller multiplies by gamma."""
    return zero_centred_penalty(critic, real).mean()


def rp_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """The relativistic pairing loss (Jolicoeur-Martineau 2019; R3GAN's RpGAN): softplus(-(D(x) - D(G(z)))), each
    real image paired with one fake, averaged. The penalties come on top (Step, train.gamma)."""
    return F.softplus(-(logits_real - logits_fake)).mean()


def rp_g_loss(logits_fake: Tensor, logits_real: Tensor) -> Tensor:
    """G's side of the pairing: softplus(-(D(G(z)) - D(x))), needing D's logits of the real batch too."""
    return F.softplus(-(logits_fake - logits_real)).mean()


def lsgan_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Least squares (Mao et al.) with targets 1 for real and 0 for fake."""
    return 0.5 * ((logits_real - 1.0) ** 2).mean() + 0.5 * (logits_fake**2).mean()


def lsgan_g_loss(logits_fake: Tensor) -> Tensor:
    return 0.5 * ((logits_fake - 1.0) ** 2).mean()


DLoss = Callable[[Tensor, Tensor], Tensor]
GLoss = Callable[..., Tensor]  # (logits_fake) or, for RELATIVISTIC losses, (logits_fake, logits_real)

LOSSES: dict[str, tuple[DLoss, GLoss]] = {
    "bce": (bce_d_loss, saturating_g_loss),
    "nonsaturating": (bce_d_loss, nonsaturating_g_loss),
    "hinge": (hinge_d_loss, hinge_g_loss),
    "wgan-gp": (wasserstein_d_loss, wasserstein_g_loss),  # the penalty itself: train.gp_weight
    "lsgan": (lsgan_d_loss, lsgan_g_loss),
    "rpgan": (rp_d_loss, rp_g_loss),  # the penalties themselves: train.gamma
}
RELATIVISTIC = {"rpgan"}  # G's loss also needs D's logits of real images

# Where D's logit says "real" for each loss, for ADA's overfitting heuristic r_t = E[sign(D(real) - boundary)]:
# 0 for the logistic and hinge losses (the paper's sign(D(real))), 0.5 for lsgan (midway between its targets 1
# and 0). The Wasserstein and relativistic losses (and their penalties) depend only on differences of logits, so
# D's logits drift by any constant and have no boundary: there r_t compares each real image with its paired fake.
BOUNDARY: dict[str, float | None] = {"bce": 0.0, "nonsaturating": 0.0, "hinge": 0.0, "lsgan": 0.5,
                                     "wgan-gp": None, "rpgan": None}


def ada_evidence(loss: str, logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Per real image, the value whose sign ADA averages into r_t: D(x) - boundary, or D(x) - D(G(z)) of its pair
    where the loss fixes no boundary (so a constant shift of every logit leaves r_t unchanged)."""
    boundary = BOUNDARY[loss]
    return logits_real - logits_fake if boundary is None else logits_real - boundary
