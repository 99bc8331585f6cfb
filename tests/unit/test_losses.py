import math

import pytest
import torch

from ganpipe.gan import losses


def sig(t: float) -> float:
    return 1 / (1 + math.exp(-t))


REAL, FAKE = [2.0, -0.5], [-1.0, 0.3]


def t(values):
    return torch.tensor(values, dtype=torch.float64)


def test_bce_d_loss_is_the_seeds_formula():
    # L_D = -[log D(x) + log(1 - D(G(z)))], batch means
    expected = -sum(math.log(sig(r)) for r in REAL) / 2 - sum(math.log(1 - sig(f)) for f in FAKE) / 2
    assert losses.bce_d_loss(t(REAL), t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_at_zero_logits_d_loss_is_2_log_2():
    assert losses.bce_d_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(2 * math.log(2))


def test_generator_losses():
    assert losses.nonsaturating_g_loss(t(FAKE)).item() == pytest.approx(
        -sum(math.log(sig(f)) for f in FAKE) / 2, rel=1e-12)
    assert losses.saturating_g_loss(t(FAKE)).item() == pytest.approx(
        sum(math.log(1 - sig(f)) for f in FAKE) / 2, rel=1e-12)


def test_hinge_and_lsgan():
    d = losses.hinge_d_loss(t(REAL), t(FAKE)).item()
    assert d == pytest.approx((max(0, 1 - 2.0) + max(0, 1 + 0.5)) / 2 + (max(0, 1 - 1.0) + max(0, 1 + 0.3)) / 2)
    assert losses.hinge_g_loss(t(FAKE)).item() == pytest.approx(0.35)
    ls = losses.lsgan_d_loss(t(REAL), t(FAKE)).item()
    assert ls == pytest.approx(0.5 * ((1.0**2 + 1.5**2) / 2) + 0.5 * ((1.0 + 0.09) / 2))
    assert losses.lsgan_g_loss(t(FAKE)).item() == pytest.approx(0.5 * ((2.0**2 + 0.7**2) / 2))


def test_bce_is_finite_where_sigmoid_then_log_overflows():
    huge = torch.tensor([200.0])
    assert torch.isfinite(losses.bce_d_loss(-huge, huge))
    assert losses.bce_d_loss(-huge, huge).item() == pytest.approx(400.0)


def test_wasserstein_losses():
    # critic: E[D(fake)] - E[D(real)]; generator: -E[D(fake)]
    assert losses.wasserstein_d_loss(t(REAL), t(FAKE)).item() == pytest.approx((-1.0 + 0.3) / 2 - (2.0 - 0.5) / 2)
    assert losses.wasserstein_g_loss(t(FAKE)).item() == pytest.approx(-(-1.0 + 0.3) / 2)


def linear_critic(w):
    # D(x) = <w, x>: its input gradient is w everywhere, so the penalties have closed forms
    return lambda x: (x.flatten(1) * w).sum(1)


def test_gradient_penalty_of_a_linear_critic():
    w = t([3.0, 4.0])  # ||w|| = 5 -> (5 - 1)^2 = 16 at every interpolate
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    gp = losses.gradient_penalty(linear_critic(w), real, fake, torch.rand(6, dtype=torch.float64))
    assert gp.item() == pytest.approx(16.0)
    unit = losses.gradient_penalty(linear_critic(t([0.6, 0.8])), real, fake, torch.rand(6, dtype=torch.float64))
    assert unit.item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_interpolates_per_example():
    # D(x) = sum(x^2): grad = 2 x_hat, so the penalty depends on where each x_hat lies
    real, fake = t([[1.0], [0.0]]), t([[0.0], [2.0]])
    alpha = t([0.5, 0.25])  # x_hat = [0.5, 1.5] -> |grad| = [1, 3] -> mean((0, 4)) = 2
    gp = losses.gradient_penalty(lambda x: (x**2).sum(1), real, fake, alpha)
    assert gp.item() == pytest.approx(2.0)


def test_r1_penalty_of_a_linear_critic():
    gp = losses.r1_penalty(linear_critic(t([3.0, 4.0])), torch.randn(5, 2, dtype=torch.float64))
    assert gp.item() == pytest.approx(0.5 * 25.0)


def test_penalties_are_differentiable_in_the_critics_weights():
    w = t([3.0, 4.0]).requires_grad_(True)
    gp = losses.gradient_penalty(linear_critic(w), torch.zeros(3, 2, dtype=torch.float64),
                                 torch.ones(3, 2, dtype=torch.float64), torch.rand(3, dtype=torch.float64))
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 4 * w / 5
    assert torch.allclose(w.grad, 1.6 * w.detach())


def test_the_relativistic_pairing_losses_pair_each_real_logit_with_one_fake():
    # L_D = mean softplus(-(r_i - f_i)), L_G = mean softplus(-(f_i - r_i)); softplus(t) = log(1 + e^t)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    d = losses.rp_d_loss(t(REAL), t(FAKE)).item()
    assert d == pytest.approx((sp(-(2.0 + 1.0)) + sp(-(-0.5 - 0.3))) / 2, rel=1e-12)
    g = losses.rp_g_loss(t(FAKE), t(REAL)).item()
    assert g == pytest.approx((sp(-(-1.0 - 2.0)) + sp(-(0.3 + 0.5))) / 2, rel=1e-12)
    assert losses.rp_d_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))  # equal logits
    assert "rpgan" in losses.RELATIVISTIC and losses.LOSSES["rpgan"] == (losses.rp_d_loss, losses.rp_g_loss)


def test_zero_centred_penalty_is_half_the_squared_input_gradient_per_example():
    # D(x) = sum(x^2): grad = 2x, so 0.5 * ||2x||^2 = 2 ||x||^2 for each example on its own
    x = t([[1.0, 2.0], [0.0, -3.0], [0.5, 0.5]])
    per_example = losses.zero_centred_penalty(lambda v: (v**2).sum(1), x)
    assert torch.allclose(per_example.double(), t([10.0, 18.0, 1.0]))  # norms come back in float32
    # R1 and R2 from one pass over [real; fake] equal each half computed alone (no example sees another)
    critic = linear_critic(t([3.0, 4.0]))
    real, fake = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    both = losses.zero_centred_penalty(critic, torch.cat([real, fake]))
    assert torch.allclose(both[:4], losses.zero_centred_penalty(critic, real))
    assert torch.allclose(both[4:].mean(), losses.r1_penalty(critic, fake))  # R2 is R1's formula at the fakes


def test_zero_centred_penalty_is_differentiable_in_the_critics_weights():
    w = t([3.0, 4.0]).requires_grad_(True)
    losses.zero_centred_penalty(linear_critic(w), torch.randn(3, 2, dtype=torch.float64)).mean().backward()
    assert torch.allclose(w.grad, w.detach(), rtol=1e-6)  # d/dw 0.5 ||w||^2 = w (through float32 norms)
