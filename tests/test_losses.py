import math

import pytest
import torch

from ganpipe import losses


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
