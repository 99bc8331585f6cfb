import dataclasses

import pytest
import torch

from ganpipe import config, data
from ganpipe.config import ConfigError
from ganpipe.models import build
from ganpipe.train import DivergenceError, fixed_noise, train


def tiny(tiny_params, **train_changes):
    cfg = config.from_dict(tiny_params)
    return cfg.model, dataclasses.replace(cfg.train, threads=1, **train_changes)


def run(model_cfg, train_cfg, images, **kwargs):
    G, D = build(model_cfg, tuple(images.shape[1:]), train_cfg.seed)
    return G, train(G, D, images, train_cfg, model_cfg.z_dim, progress=False, **kwargs)


@pytest.mark.parametrize("loss", ["nonsaturating", "bce", "hinge", "lsgan"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_seed_same_losses_and_weights(tiny_params, loss, precision):
    model_cfg, train_cfg = tiny(tiny_params, loss=loss, precision=precision)
    images = data.synthetic(96).images
    G1, r1 = run(model_cfg, train_cfg, images)
    G2, r2 = run(model_cfg, train_cfg, images)
    assert r1.history == r2.history
    assert all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G2.state_dict().values()))
    assert len(r1.history) == train_cfg.epochs and r1.steps == train_cfg.epochs * (96 // train_cfg.batch_size)


def test_callbacks_get_every_epoch(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params)
    logged, grids = [], []
    run(model_cfg, train_cfg, data.synthetic(64).images,
        log=lambda epoch, m: logged.append((epoch, sorted(m))),
        log_images=lambda epoch, imgs: grids.append((epoch, imgs.shape, imgs.dtype)),
        grid_noise=fixed_noise(4, model_cfg.z_dim, 0))
    assert logged == [(e, ["d/fake", "d/real", "loss/d", "loss/g"]) for e in (1, 2)]
    assert grids == [(e, (4, 1, 28, 28), torch.uint8) for e in (1, 2)]


def test_batch_larger_than_the_data_is_refused(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params, batch_size=100)
    with pytest.raises(ConfigError, match="train.batch_size must be at most the 50 training images, got 100"):
        run(model_cfg, train_cfg, data.synthetic(50).images)


def test_nan_loss_stops_training(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params)
    G, D = build(model_cfg, (1, 28, 28), 0)
    with torch.no_grad():
        next(D.parameters()).fill_(float("nan"))
    with pytest.raises(DivergenceError, match="diverged at epoch 1"):
        train(G, D, data.synthetic(64).images, train_cfg, model_cfg.z_dim, progress=False)


def test_training_moves_d_outputs_apart(tiny_params):
    # a few epochs on easy data: D learns to tell real from fake, so mean D(x) > mean D(G(z))
    model_cfg, train_cfg = tiny(tiny_params, epochs=3)
    _, result = run(model_cfg, train_cfg, data.synthetic(256).images)
    last = result.history[-1]
    assert last["d/real"] > last["d/fake"]
