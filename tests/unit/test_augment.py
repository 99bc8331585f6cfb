import pytest
import torch

from ganpipe.gan.augment.diffaugment import cutout, diff_augment, translation


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_same_generator_state_same_augmentation():
    x = torch.randn(8, 1, 28, 28)
    a = diff_augment(x, ("translation", "cutout"), gen(3))
    b = diff_augment(x, ("translation", "cutout"), gen(3))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, diff_augment(x, ("translation", "cutout"), gen(4)))


def test_translation_moves_content_by_at_most_an_eighth():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0  # one bright pixel in the middle
    out = translation(x, gen())
    assert torch.equal(out.flatten(1).sum(1), torch.ones(64))  # moved, never lost (|shift| <= 2 < 8)
    pos = out.flatten(1).argmax(1)
    dy, dx = pos // 16 - 8, pos % 16 - 8
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2 and (dy != 0).any() and (dx != 0).any()


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(256, 1, 16, 16)
    out = cutout(x, gen())
    zeros = (out == 0).flatten(1).sum(1)
    assert zeros.max() == 64  # an 8x8 square when it lies inside the image
    assert zeros.min() > 0 and zeros.min() < 64  # and clipped at the border otherwise


@pytest.mark.parametrize("policy", ["translation", "cutout"])
def test_augmentation_is_differentiable(policy):
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    diff_augment(x, (policy,), gen()).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
