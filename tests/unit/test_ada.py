"""ADA's pipeline (gan/augment/ada.py) and its strength p (gan/augment/strength.py): every augmentation is the
identity at p = 0 and at p = 1 changes the image and passes gradients (a second backward too, for R1/R2); p
rises while D is sure of the real images and falls otherwise, and under a loss with no boundary between real and
fake logits (rpgan, wgan-gp) no constant drift of D's logits moves it. Equality with the official pipeline:
checks/ada_official.py."""
from __future__ import annotations

import math

import pytest
import torch

from ganpipe.distributed.group import SOLO
from ganpipe.gan.augment import ada
from ganpipe.gan.augment.strength import INTERVAL, SPEED_IMAGES, Strength, adjusted
from ganpipe.gan.losses import BOUNDARY, LOSSES, ada_evidence

OPS = [f for f in ada.Multipliers.__dataclass_fields__]
COLOUR_ONLY = {"hue", "saturation"}  # no effect on grey images


def alone(op: str) -> str:
    """A pipe with only `op` on, registered under its own name."""
    ada.PIPES[f"only_{op}"] = ada.Multipliers(**{op: 1})
    return f"only_{op}"


def images(channels: int, size: int = 16, batch: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    return torch.rand(batch, channels, size, size, generator=g) * 2 - 1  # no flat image: every op shows


def run(pipe: str, x: torch.Tensor, p: float, seed: int = 0) -> torch.Tensor:
    return ada.Ada(pipe, torch.Generator().manual_seed(seed))(x, torch.tensor(p))


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("op", OPS + ["bgc", "bgcc"])
def test_each_augmentation_is_the_identity_at_p_0(op, channels):
    x = images(channels)
    assert torch.equal(run(op if op in ada.PIPES else alone(op), x, 0.0), x)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("op", OPS + ["bgc", "bgcc"])
def test_at_p_1_each_augmentation_changes_images_and_passes_gradients(op, channels):
    if channels == 1 and op in COLOUR_ONLY:
        pytest.skip("hue and saturation do nothing to grey images (as in the official pipeline)")
    x = images(channels, batch=64).requires_grad_(True)
    y = run(op if op in ada.PIPES else alone(op), x, 1.0)
    assert y.shape == x.shape and y.dtype == torch.float32
    changed = (y - x).flatten(1).abs().amax(1) > 1e-3
    assert changed.float().mean() >= 0.3  # flips and luma flips pick "no change" half the time
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_its_image_gradient_can_be_differentiated_again_for_the_penalties():
    x = images(3).requires_grad_(True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    out = torch.nn.functional.conv2d(run("bgcc", x, 1.0), w).square().sum()
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    grad.square().sum().backward()  # R1's double backward goes through the resampling
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


def test_same_generator_state_same_augmentation_and_p_sets_the_share_augmented():
    x = images(3, batch=400)
    assert torch.equal(run("bgc", x, 0.5, seed=3), run("bgc", x, 0.5, seed=3))
    assert not torch.equal(run("bgc", x, 0.5, seed=3), run("bgc", x, 0.5, seed=4))
    brightness = alone("brightness")
    for p in (0.2, 0.7):
        share = ((run(brightness, x, p) - x).flatten(1).abs().amax(1) > 0).float().mean().item()
        assert abs(share - p) < 0.08  # each image's chance is p x its multiplier


def test_geometry_keeps_a_constant_image_constant_and_a_flip_mirrors():
    flat = torch.full((4, 3, 16, 16), 0.25)
    for op in ("scale", "rotate", "aniso", "xfrac", "xint", "rotate90"):
        assert torch.allclose(run(alone(op), flat, 1.0), flat, atol=1e-5)  # reflection padding: no dark borders
    ramp = torch.linspace(-1, 1, 16)  # smooth: the resampling's low-pass barely touches it
    x = (ramp.view(1, 1, 1, 16) * torch.linspace(0.2, 1, 64).view(64, 1, 1, 1)).expand(64, 1, 16, 16)
    y = run(alone("xflip"), x, 1.0)
    flipped = (y - x.flip(3)).flatten(1).abs().amax(1) < 2e-2  # within 1% of the range (2): resampled, not copied
    kept = (y - x).flatten(1).abs().amax(1) == 0
    assert (flipped | kept).all() and flipped.any() and kept.any()


def test_cutout_zeroes_a_rectangle_of_half_the_size():
    x = torch.ones(64, 1, 16, 16)
    zeros = (run(alone("cutout"), x, 1.0) == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() > 0  # 8x8 inside the image, clipped at its border


def test_p_rises_while_d_is_sure_of_the_real_images_and_falls_otherwise():
    batch = 64
    s = Strength(0.0, 0.6, batch, torch.device("cpu"))
    sure = torch.full((batch,), 3.0)  # sign +1 everywhere: r_t = 1 > 0.6
    for _ in range(10 * INTERVAL):
        s.observe(sure)
        s.after_step(SOLO)
    step = batch * INTERVAL / SPEED_IMAGES
    assert math.isclose(s.p.item(), 10 * step, rel_tol=1e-4)
    unsure = torch.cat([torch.full((batch // 2,), 1.0), torch.full((batch // 2,), -1.0)])  # r_t = 0 < 0.6
    for _ in range(4 * INTERVAL):
        s.observe(unsure)
        s.after_step(SOLO)
    assert math.isclose(s.p.item(), 6 * step, rel_tol=1e-4)
    for _ in range(20 * INTERVAL):  # and never below 0
        s.observe(unsure)
        s.after_step(SOLO)
    assert s.p.item() == 0.0


def test_r_t_ignores_a_drift_of_the_logits_under_rpgan_and_wgan():
    """The failure it fixes: under rpgan, D won (real logits above their fakes') while every logit drifted below
    0, so E[sign(D(real))] said -1 and p never rose. Paired evidence says D is sure, at any drift."""
    g = torch.Generator().manual_seed(3)
    fake = torch.randn(64, generator=g)
    real = fake + torch.rand(64, generator=g) + 0.1  # D ranks every real image above its fake
    for loss in ("rpgan", "wgan-gp"):
        for drift in (-50.0, 0.0, 50.0):
            assert torch.sign(ada_evidence(loss, real + drift, fake + drift)).mean().item() == 1.0
    # the paper's boundary at 0, and lsgan's midway between its targets 1 and 0
    assert torch.sign(ada_evidence("hinge", real - 50, fake - 50)).mean().item() == -1.0
    assert ada_evidence("lsgan", torch.tensor([0.7, 0.3]), torch.zeros(2)).sign().tolist() == [1.0, -1.0]
    assert set(BOUNDARY) == set(LOSSES)  # a new loss must say where its boundary is

    batch = 64
    s = Strength(0.0, 0.6, batch, torch.device("cpu"))
    for _ in range(10 * INTERVAL):  # all logits negative, D sure: p rises
        s.observe(ada_evidence("rpgan", real[:batch] - 20, fake[:batch] - 20))
        s.after_step(SOLO)
    assert math.isclose(s.p.item(), 10 * batch * INTERVAL / SPEED_IMAGES, rel_tol=1e-4)
    unsure = torch.cat([real[:batch // 2], fake[batch // 2:]]), torch.cat([fake[:batch // 2], real[batch // 2:]])
    for _ in range(20 * INTERVAL):  # all logits positive, D right on half the pairs (r_t = 0): p falls to 0
        s.observe(ada_evidence("rpgan", unsure[0] + 20, unsure[1] + 20))
        s.after_step(SOLO)
    assert s.p.item() == 0.0


def test_an_adjustment_follows_the_papers_speed_and_stays_in_0_1():
    p = torch.tensor(0.5)
    assert math.isclose(adjusted(p, torch.tensor(0.9), 0.6, 5000).item(), 0.5 + 5000 / SPEED_IMAGES, rel_tol=1e-6)
    assert math.isclose(adjusted(p, torch.tensor(0.1), 0.6, 5000).item(), 0.5 - 5000 / SPEED_IMAGES, rel_tol=1e-6)
    assert adjusted(torch.tensor(0.999), torch.tensor(1.0), 0.6, 10_000).item() == 1.0
    assert adjusted(torch.tensor(0.001), torch.tensor(-1.0), 0.6, 10_000).item() == 0.0


def test_fixed_p_ignores_the_heuristic_and_its_state_round_trips():
    s = Strength(0.3, None, 16, torch.device("cpu"))
    for _ in range(3 * INTERVAL):
        s.observe(torch.ones(16))
        s.after_step(SOLO)
    assert s.p.item() == pytest.approx(0.3)
    a = Strength(0.0, 0.6, 16, torch.device("cpu"))
    for _ in range(INTERVAL + 2):  # stop between two adjustments: the partial sums must carry over
        a.observe(torch.ones(16))
        a.after_step(SOLO)
    b = Strength(0.0, 0.6, 16, torch.device("cpu"))
    b.load_state_dict(a.state_dict())
    for s_ in (a, b):
        for _ in range(2):
            s_.observe(-torch.ones(16))
            s_.after_step(SOLO)
    assert torch.equal(a.p, b.p) and torch.equal(a.signs, b.signs) and a.steps == b.steps


@pytest.mark.parametrize("up, down, pad, flip", [(2, 1, (6, 5), False), (1, 2, (-1, -1), True)])
def test_resampling_as_matrices_is_the_upfirdn_definition(up, down, pad, flip):
    x = images(3, size=20, batch=4)
    along_width = ada.upfirdn_1d(x, up, down, pad, flip)
    expected = ada.upfirdn_1d(along_width.transpose(-1, -2), up, down, pad, flip).transpose(-1, -2)
    got = ada.resample(x, up, down, pad, flip)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
    flat = torch.full((1, 1, 20, 20), 0.7)
    inner = ada.resample(flat, up, down, pad, flip)[..., 8:-8, 8:-8]  # away from the zero padding at the borders
    assert torch.allclose(inner, torch.full_like(inner, 0.7), atol=1e-5)  # gain: a constant stays constant
