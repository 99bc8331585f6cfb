import dataclasses

import pytest
import torch

from ganpipe.gan.models import build
from ganpipe.params import config
from ganpipe.params.config import ConfigError


def model_cfg(default_params, **changes) -> config.ModelConfig:
    return dataclasses.replace(config.from_dict(default_params).model, **changes)


SEED_MLP = dict(arch="mlp", g_hidden=(128, 256, 512, 1024), d_hidden=(1024, 512, 256, 128),
                g_activation="relu", d_activation="relu", g_batchnorm=False, conditional=False)


# dcgan widths per size: one block per width (4x4 -> the full size in G, the full size -> 4x4 in D)
DCGAN_WIDTHS = {32: ((64, 32, 16), (16, 32, 64)), 64: ((64, 32, 16, 8), (8, 16, 32, 64)),
                128: ((32, 16, 16, 8, 8), (8, 8, 16, 16, 32)), 256: ((32, 16, 16, 8, 8, 8), (8, 8, 8, 16, 16, 32))}


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28)), ("mlp", (3, 32, 32)),
                                        ("dcgan", (3, 32, 32)), ("dcgan", (1, 32, 32)), ("dcgan", (3, 64, 64)),
                                        ("dcgan", (1, 128, 128)), ("dcgan", (3, 128, 128)), ("dcgan", (1, 256, 256)),
                                        ("dcgan", (3, 256, 256))])
@pytest.mark.parametrize("conditional", [True, False])
def test_shapes_and_range(default_params, arch, shape, conditional):
    changes = {"arch": arch, "conditional": conditional}
    if arch == "dcgan" and shape[1] in DCGAN_WIDTHS:
        changes["g_hidden"], changes["d_hidden"] = DCGAN_WIDTHS[shape[1]]
    cfg = model_cfg(default_params, **changes)
    G, D = build(cfg, shape, seed=0, num_classes=10)
    z, y = torch.randn(5, cfg.z_dim), torch.arange(5)
    x = G(z, y)
    assert x.shape == (5, *shape)
    assert x.min() >= -1 and x.max() <= 1
    logits = D(x, y)
    assert logits.shape == (5,)
    assert torch.isfinite(logits).all()


def test_seed_mlp_has_the_articles_widths(default_params):
    cfg = model_cfg(default_params, **SEED_MLP)
    G, D = build(cfg, (1, 28, 28), seed=0, num_classes=10)
    g_linear = [m for m in G.modules() if isinstance(m, torch.nn.Linear)]
    d_linear = [m for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_linear] == [
        (100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert [(m.in_features, m.out_features) for m in d_linear] == [
        (784, 1024), (1024, 512), (512, 256), (256, 128), (128, 1)]


def test_same_seed_same_weights(default_params):
    cfg = model_cfg(default_params)
    (g1, d1), (g2, d2) = build(cfg, (1, 28, 28), 3, 10), build(cfg, (1, 28, 28), 3, 10)
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(d1.state_dict().values(), d2.state_dict().values()))
    g3, _ = build(cfg, (1, 28, 28), 4, 10)
    assert not all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g3.state_dict().values()))


def test_dcgan_init_follows_radford(default_params):
    G, _ = build(model_cfg(default_params), (1, 28, 28), seed=0, num_classes=10)
    conv = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)][0]
    assert abs(conv.weight.std().item() - 0.02) < 0.005


def test_spectral_norm_bounds_d_layers(default_params):
    cfg = model_cfg(default_params, arch="mlp", d_spectral_norm=True, conditional=False)
    _, D = build(cfg, (1, 28, 28), seed=0, num_classes=10)
    D.train()
    x = torch.randn(8, 1, 28, 28)
    for _ in range(30):  # power iteration converges over forward passes
        D(x)
    first = D.net[1]
    sigma = torch.linalg.matrix_norm(first.weight.detach(), ord=2)
    assert sigma == pytest.approx(1.0, abs=0.05)


def test_dcgan_rejects_a_shape_it_cannot_make(default_params):
    cfg = model_cfg(default_params, g_hidden=(64, 32, 16))  # 3 upsamplings: 28 is not divisible by 8
    with pytest.raises(ConfigError, match="model.g_hidden has 3 upsampling blocks"):
        build(cfg, (1, 28, 28), seed=0, num_classes=10)


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32))])
def test_conditional_models_use_the_labels(default_params, arch, shape):
    changes = {"arch": arch, "conditional": True}
    if shape[1] == 32:
        changes["g_hidden"] = (64, 32, 16)
    cfg = model_cfg(default_params, **changes)
    G, D = build(cfg, shape, seed=0, num_classes=10)
    G.eval()
    z = torch.randn(1, cfg.z_dim).repeat(2, 1)
    y = torch.tensor([3, 7])
    x = G(z, y)
    assert x.shape == (2, *shape) and not torch.equal(x[0], x[1])  # same z, other class -> other image
    logits = D(x[:1].repeat(2, 1, 1, 1), y)
    assert logits.shape == (2,) and logits[0] != logits[1]  # same image, other class -> other score
    with pytest.raises(ValueError, match="needs class labels"):
        G(z)


def test_projection_discriminator_adds_the_label_term(default_params):
    cfg = model_cfg(default_params, conditional=True, d_spectral_norm=False)
    _, D = build(cfg, (1, 28, 28), seed=0, num_classes=10)
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 4, 9])
    h = D.net(x)
    expected = D.head.linear(h).flatten() + (D.head.embed.weight[y] * h).sum(1)
    assert torch.allclose(D(x, y), expected, atol=1e-5)


def test_spectral_norm_on_g_and_d(default_params):
    cfg = model_cfg(default_params, g_spectral_norm=True, d_spectral_norm=True)
    G, D = build(cfg, (1, 28, 28), seed=0, num_classes=10)
    for net in (G, D):
        weighted = [m for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d,
                                                                torch.nn.ConvTranspose2d))]
        assert weighted and all(hasattr(m, "parametrizations") for m in weighted)
    plain, _ = build(model_cfg(default_params, g_spectral_norm=False), (1, 28, 28), seed=0, num_classes=10)
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())
