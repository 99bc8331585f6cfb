"""R3GAN's networks (gan/r3gan.py): shapes at every supported size, grey and colour, conditional or not; the
initialisation the paper prescribes; the resamplers' low-pass filter; and one clear error for params that
cannot make the images. Training with it (the rpgan loss, resume) is in tests/stages/test_r3gan_training.py."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ganpipe.errors import ConfigError
from ganpipe.gan import r3gan
from ganpipe.gan.models import build
from ganpipe.params import config

from helpers import R3GAN_TINY


def tiny_r3gan(tiny_params, stages: int, **changes) -> config.ModelConfig:
    """Widths 16, 16, 8, 8, ... from 4x4 up (D mirrored), one block per stage, 4 groups: seconds at 256 px."""
    widths = [16 if i < 2 else 8 for i in range(stages)]
    model = {**R3GAN_TINY, "g_hidden": widths, "d_hidden": widths[::-1], "blocks": [1] * stages,
             "cardinality": [4] * stages}
    params = {**tiny_params, "model": {**tiny_params["model"], **model, **changes}}
    return config.from_dict(params).model


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("conditional", [True, False])
def test_shapes_at_every_size_grey_and_colour(tiny_params, size, channels, conditional):
    stages = int(math.log2(size)) - 1
    cfg = tiny_r3gan(tiny_params, stages, conditional=conditional)
    G, D = build(cfg, (channels, size, size), seed=0, num_classes=10)
    y = torch.arange(3) if conditional else None
    x = G(torch.randn(3, cfg.z_dim), y)
    assert x.shape == (3, channels, size, size) and torch.isfinite(x).all()
    logits = D(x, y)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)) for m in G.modules())
    assert not any(hasattr(m, "parametrizations") for m in D.modules())  # no spectral norm either


def test_the_class_changes_both_networks_outputs(tiny_params):
    cfg = tiny_r3gan(tiny_params, 4)
    G, D = build(cfg, (3, 32, 32), seed=0, num_classes=10)
    z = torch.randn(1, cfg.z_dim).expand(2, -1)
    x = G(z, torch.tensor([1, 2]))
    assert not torch.allclose(x[0], x[1])
    logits = D(x[:1].expand(2, -1, -1, -1), torch.tensor([1, 2]))
    assert logits[0] != logits[1]
    with pytest.raises(ValueError, match="needs class labels"):
        G(z, None)


def test_a_block_starts_as_the_identity_and_its_inner_convs_are_variance_scaled():
    torch.manual_seed(0)
    block = r3gan.ResidualBlock(64, cardinality=8, expansion=4, kernel=3, total_blocks=16)
    x = torch.randn(2, 64, 8, 8)
    assert torch.equal(block(x), x)  # the last 1x1 conv starts at zero
    assert torch.count_nonzero(block.project.weight) == 0
    gain = r3gan.LRELU_GAIN * 16 ** (-1 / 4)  # L^(-1/(2m-2)) with m = 3 layers per block
    for layer, fan_in in ((block.expand, 64), (block.grouped, 256 // 8 * 9)):
        assert layer.weight.std().item() == pytest.approx(gain / math.sqrt(fan_in), rel=0.05)
    assert all(torch.count_nonzero(act.bias) == 0 for act in (block.act1, block.act2))


def test_the_lowpass_kernel_is_the_normalised_outer_product_of_1_3_3_1():
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(r3gan.lowpass_kernel(), torch.outer(k, k) / 64)


def test_resampling_doubles_or_halves_the_side_and_keeps_a_constant_image_constant_inside():
    up, down = r3gan.Resample(5, 5, up=True), r3gan.Resample(5, 5, up=False)
    x = torch.full((2, 5, 8, 8), 0.7)
    y_up, y_down = up(x), down(x)
    assert y_up.shape == (2, 5, 16, 16) and y_down.shape == (2, 5, 4, 4)
    assert torch.allclose(y_up[..., 2:-2, 2:-2], x[..., :1, :1].expand(-1, -1, 12, 12))  # the border sees zeros
    assert torch.allclose(y_down[..., 1:-1, 1:-1], torch.full((2, 5, 2, 2), 0.7))
    assert r3gan.Resample(5, 3, up=True)(x).shape == (2, 3, 16, 16)  # a 1x1 conv where the width changes


def test_downsampling_is_the_filtered_image_taken_every_other_pixel():
    x = torch.randn(1, 1, 8, 8)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    k = r3gan.lowpass_kernel()
    expected = torch.stack([torch.stack([(padded[0, 0, 2 * i:2 * i + 4, 2 * j:2 * j + 4] * k).sum()
                                         for j in range(4)]) for i in range(4)])
    assert torch.allclose(r3gan.Resample(1, 1, up=False)(x)[0, 0], expected, atol=1e-6)


def test_images_the_stages_cannot_make_are_one_clear_error(tiny_params):
    cfg = tiny_r3gan(tiny_params, 4)
    with pytest.raises(ConfigError, match=r"makes 32px images, not 28x28: .*data.image_size"):
        build(cfg, (1, 28, 28), seed=0, num_classes=10)
    with pytest.raises(ConfigError, match="makes 32px images, not 64x64: use 5 stages for 64x64"):
        build(cfg, (3, 64, 64), seed=0, num_classes=10)


@pytest.mark.parametrize("changes, message", [
    (dict(blocks=(1, 1, 1)), "model.blocks must have one entry per stage of model.g_hidden (4)"),
    (dict(d_hidden=(8, 8, 16)), "model.d_hidden must have one entry per stage"),
    (dict(cardinality=(3, 3, 3, 3)), "widths times model.expansion (2) must split into model.cardinality groups"),
    (dict(d_spectral_norm=True), "set model.d_spectral_norm: false"),
    (dict(g_batchnorm=True, d_dropout=0.2), "set model.g_batchnorm: false, model.d_dropout: 0.0"),
])
def test_r3gan_params_that_cannot_work_are_refused_naming_the_key(tiny_params, changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_r3gan(tiny_params, 4, **changes)


def test_the_stage_lists_are_ignored_by_the_other_architectures(tiny_params):
    cfg = config.from_dict(tiny_params).model
    assert cfg.arch != "r3gan"
    build(dataclasses.replace(cfg, blocks=(5,), cardinality=(7, 7)), (1, 28, 28), seed=0, num_classes=10)


def test_a_generator_file_from_before_r3gan_still_loads(tiny_params, tmp_path):
    """Files written before model.blocks, cardinality and expansion existed lack them in their metadata."""
    from ganpipe import checkpoint
    from ganpipe.gan import sampling

    cfg = config.from_dict(tiny_params).model
    G, _ = build(cfg, (1, 28, 28), seed=0, num_classes=10)
    old = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("blocks", "cardinality", "expansion")}
    checkpoint.save_module(G, tmp_path / "g.safetensors", "generator",
                           {"model": old, "shape": [1, 28, 28], "num_classes": 10})
    loaded = sampling.load_generator(tmp_path / "g.safetensors")
    assert loaded.model.arch == cfg.arch and loaded.model.g_hidden == cfg.g_hidden
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), loaded.net.state_dict().values()))
