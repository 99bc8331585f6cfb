"""Training R3GAN with its rpgan loss: repeatable in fp32 and bf16, both penalties reported, bitwise across an
interruption (tests/stages/test_ada_training.py), and the configs valid (identical networks on every rank under DDP: tests/stages/test_distributed.py)."""
from __future__ import annotations

import pytest
import torch

from ganpipe.data import datasets
from ganpipe.gan.models import build
from ganpipe.gan.train import train
from ganpipe.params import config, overlays

from helpers import R3GAN_TINY, ROOT, hooked, only_one_emulated_bf16_loss

def cfgs(tiny_params, **train_changes):
    params = {**tiny_params, "model": {**tiny_params["model"], **R3GAN_TINY},
              "train": {**tiny_params["train"], "loss": "rpgan", "gamma": 0.5, "threads": 1, "epochs": 2,
                        "batch_size": 16, **train_changes}}
    cfg = config.from_dict(params)
    return cfg.model, cfg.train


def run(model_cfg, train_cfg, split, **kwargs):
    G, D = build(model_cfg, tuple(split.images.shape[1:]), train_cfg.seed, 10)
    return G, train(G, D, split.images, train_cfg, model_cfg.z_dim, labels=split.labels, **hooked(kwargs))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_rpgan_trains_repeatably_and_reports_both_penalties(tiny_params, precision):
    only_one_emulated_bf16_loss(precision, "hinge")  # one bf16 case where bf16 is emulated
    model_cfg, train_cfg = cfgs(tiny_params, precision=precision, augment=("translation", "cutout"))
    split = datasets.synthetic(64, size=32, channels=3)
    (G1, a), (G2, b) = run(model_cfg, train_cfg, split), run(model_cfg, train_cfg, split)
    assert a.history == b.history
    assert all(torch.equal(x, y) for x, y in zip(G1.state_dict().values(), G2.state_dict().values()))
    last = a.history[-1]
    assert set(last) >= {"loss/d", "loss/g", "penalty/r1", "penalty/r2"}
    assert all(v > 0 and v == v for k, v in last.items() if k.startswith("penalty/"))


def test_without_gamma_rpgan_has_no_penalties_and_learns_to_tell_real_from_fake(tiny_params):
    model_cfg, train_cfg = cfgs(tiny_params, gamma=0.0, epochs=3)
    _, result = run(model_cfg, train_cfg, datasets.synthetic(128, size=32, channels=3))
    last = result.history[-1]
    assert not any(k.startswith("penalty/") for k in last)
    assert last["d/real"] > last["d/fake"]


@pytest.mark.parametrize("name", ["r3gan_small", "r3gan_cifar", "r3gan_ffhq64", "r3gan_ffhq256"])
def test_the_r3gan_configs_are_valid_and_build(name):
    cfg = config.from_dict(overlays.merge(config.load(ROOT / "params.yaml").raw,
                                          overlays.read(ROOT / "configs" / f"{name}.yaml")))
    assert cfg.model.arch == "r3gan" and cfg.train.loss == "rpgan"
    if name == "r3gan_small":  # the GPU presets are tens of millions of weights: built by checks/r3gan_official.py
        size = cfg.data.image_size
        G, D = build(cfg.model, (3, size, size), 0, 10)
        assert G(torch.randn(2, cfg.model.z_dim), torch.arange(2)).shape == (2, 3, size, size)
