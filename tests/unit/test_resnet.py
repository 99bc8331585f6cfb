"""The SNGAN-style ResNet (gan/resnet.py): shapes for every size and channel count, and every loss, penalty,
EMA, DiffAugment, bf16 and resume working with it (repeatably, and bitwise across an interruption)."""
import dataclasses

import pytest
import torch

from ganpipe.data import datasets
from ganpipe.gan.models import build
from ganpipe.gan.resnet import CondBatchNorm
from ganpipe.gan.train import train
from ganpipe.params import config

from helpers import hooked, interrupted, only_one_emulated_bf16_loss

RESNET = dict(arch="resnet", g_hidden=(16, 16, 16), d_hidden=(16, 16, 16), g_activation="relu",
              d_activation="relu")


def cfgs(tiny_params, model=None, **train_changes):
    cfg = config.from_dict(tiny_params)
    model_cfg = dataclasses.replace(cfg.model, **{**RESNET, **(model or {})})
    return model_cfg, dataclasses.replace(cfg.train, threads=1, epochs=2, batch_size=16, **train_changes)


def run(model_cfg, train_cfg, split, **kwargs):
    G, D = build(model_cfg, tuple(split.images.shape[1:]), train_cfg.seed, 10)
    return G, train(G, D, split.images, train_cfg, model_cfg.z_dim, labels=split.labels, **hooked(kwargs))


@pytest.mark.parametrize("size,g_hidden,d_hidden", [(28, (16, 16), (16, 16)), (32, (16, 16, 16), (16, 16, 16, 16)),
                                                    (64, (32, 16, 16, 8), (8, 16, 16, 32, 32)),
                                                    (128, (16, 16, 8, 8, 8), (8, 8, 8, 16, 16, 16)),
                                                    (256, (16, 16, 8, 8, 8, 8), (8, 8, 8, 8, 16, 16, 16))])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("conditional", [True, False])
def test_shapes_for_each_size_and_channel_count(tiny_params, size, g_hidden, d_hidden, channels, conditional):
    model_cfg, _ = cfgs(tiny_params, dict(g_hidden=g_hidden, d_hidden=d_hidden, conditional=conditional))
    G, D = build(model_cfg, (channels, size, size), seed=0, num_classes=10)
    x = G(torch.randn(4, model_cfg.z_dim), torch.arange(4))
    assert x.shape == (4, channels, size, size) and x.min() >= -1 and x.max() <= 1
    assert D(x, torch.arange(4)).shape == (4,)
    assert all(hasattr(m, "parametrizations") for m in D.modules() if isinstance(m, torch.nn.Conv2d))
    assert any(isinstance(m, CondBatchNorm) and m.gain is not None for m in G.modules()) == conditional


def test_the_class_steers_every_block_of_a_trained_conditional_generator(tiny_params):
    model_cfg, train_cfg = cfgs(tiny_params)
    G, result = run(model_cfg, train_cfg, datasets.synthetic(64, size=32, channels=3))
    G = result.generator.eval()
    z = torch.randn(1, model_cfg.z_dim).expand(2, -1)
    x = G(z, torch.tensor([0, 5]))
    assert not torch.equal(x[0], x[1])  # same z, two classes: the conditional batch norms differ


@pytest.mark.parametrize("loss", ["nonsaturating", "bce", "hinge", "wgan-gp", "lsgan"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_loss_and_precision_trains_repeatably(tiny_params, loss, precision):
    only_one_emulated_bf16_loss(precision, loss)
    model_cfg, train_cfg = cfgs(tiny_params, loss=loss, precision=precision,
                                gp_weight=10.0 if loss == "wgan-gp" else 0.0)
    split = datasets.synthetic(64, size=32, channels=3)
    G1, r1 = run(model_cfg, train_cfg, split)
    G2, r2 = run(model_cfg, train_cfg, split)
    assert r1.history == r2.history and all(v == v for row in r1.history for v in row.values())
    assert all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G2.state_dict().values()))


@pytest.mark.parametrize("changes", [dict(augment=("translation", "cutout")), dict(r1_weight=5.0),
                                     dict(loss="wgan-gp", gp_weight=10.0), dict(ema_decay=0.9),
                                     dict(ema_decay=None)])
def test_stabilisers_work_with_the_resnet(tiny_params, changes):
    model_cfg, train_cfg = cfgs(tiny_params, **changes)
    _, result = run(model_cfg, train_cfg, datasets.synthetic(64, size=32, channels=3))
    assert len(result.history) == 2
    if changes.get("r1_weight"):
        assert result.history[-1]["penalty/r1"] > 0
    if changes.get("gp_weight"):
        assert result.history[-1]["penalty/gp"] > 0  # (|grad| - 1)^2: zero only if every norm were exactly 1


def test_interrupted_resnet_training_resumes_bitwise(tiny_params, tmp_path):
    # auto: bf16 where the CPU does it natively (elsewhere emulated bf16 is ~20x slower and fp32 is what runs)
    model_cfg, train_cfg = cfgs(tiny_params, augment=("translation",), ema_decay=0.9, precision="auto")
    train_cfg = dataclasses.replace(train_cfg, epochs=3)
    split = datasets.synthetic(64, size=32, channels=3)
    _, full = run(model_cfg, train_cfg, split)

    state = interrupted(run, model_cfg, train_cfg, split, tmp_path / "train.pt", at=3)
    _, resumed = run(model_cfg, train_cfg, split, resume_from=state)
    assert resumed.history == full.history
    assert all(torch.equal(a, b) for a, b in zip(full.generator.state_dict().values(),
                                                  resumed.generator.state_dict().values()))
