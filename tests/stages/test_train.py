import dataclasses
import math

import pytest
import torch

from ganpipe.data import datasets
from ganpipe.gan.models import build
from ganpipe.gan.train import DivergenceError, fixed_noise, train
from ganpipe.params.config import ConfigError

from helpers import interrupted, only_one_emulated_bf16_loss, tiny_train, train_tiny

tiny, run = tiny_train, train_tiny  # the tiny training of tests/helpers


@pytest.mark.parametrize("loss", ["nonsaturating", "bce", "hinge", "wgan-gp", "lsgan"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_seed_same_losses_and_weights(tiny_params, loss, precision):
    only_one_emulated_bf16_loss(precision, loss)
    model_cfg, train_cfg = tiny(tiny_params, loss=loss, precision=precision,
                                gp_weight=10.0 if loss == "wgan-gp" else 0.0)
    split = datasets.synthetic(96)
    G1, r1 = run(model_cfg, train_cfg, split)
    G2, r2 = run(model_cfg, train_cfg, split)
    assert r1.history == r2.history
    assert all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G2.state_dict().values()))
    assert len(r1.history) == train_cfg.epochs and r1.steps == train_cfg.epochs * (96 // train_cfg.batch_size)


def test_callbacks_get_every_epoch(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params)
    logged, grids = [], []
    G1, r1 = run(model_cfg, train_cfg, datasets.synthetic(64),
                 log=lambda epoch, m: logged.append((epoch, sorted(m))),
                 log_images=lambda epoch, imgs: grids.append((epoch, imgs.shape, imgs.dtype)),
                 grid=fixed_noise(4, model_cfg.z_dim, 0, 10))
    assert logged == [(e, ["d/fake", "d/real", "loss/d", "loss/g", "progress/kimg"]) for e in (1, 2)]
    assert grids == [(e, (4, 1, 28, 28), torch.uint8) for e in (0, 1, 2)]  # 0: the untrained G
    G2, r2 = run(model_cfg, train_cfg, datasets.synthetic(64))  # drawing the grids changes nothing
    assert r1.history == r2.history
    assert all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G2.state_dict().values()))


def test_batch_larger_than_the_data_is_refused(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params, batch_size=100)
    with pytest.raises(ConfigError, match="train.batch_size must be at most the 50 training images, got 100"):
        run(model_cfg, train_cfg, datasets.synthetic(50))


def test_nan_loss_stops_training(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params)
    G, D = build(model_cfg, (1, 28, 28), 0, 10)
    with torch.no_grad():
        next(D.parameters()).fill_(float("nan"))
    with pytest.raises(DivergenceError, match="diverged at epoch 1"):
        split = datasets.synthetic(64)
        train(G, D, split.images, train_cfg, model_cfg.z_dim, labels=split.labels)


def test_training_moves_d_outputs_apart(tiny_params):
    # a few epochs on easy data: D learns to tell real from fake, so mean D(x) > mean D(G(z))
    model_cfg, train_cfg = tiny(tiny_params, epochs=3)
    _, result = run(model_cfg, train_cfg, datasets.synthetic(256))
    last = result.history[-1]
    assert last["d/real"] > last["d/fake"]


EVERY_RNG = dict(augment=("translation", "cutout"), r1_weight=1.0, epochs=4)  # + dropout: the global RNG


@pytest.mark.parametrize("changes", [EVERY_RNG, dict(loss="wgan-gp", gp_weight=10.0, d_steps=2, epochs=3)])
def test_interrupted_training_resumes_to_bitwise_the_same_weights(tiny_params, tmp_path, changes):
    tiny_params["model"]["d_dropout"] = 0.2
    model_cfg, train_cfg = tiny(tiny_params, **changes)
    split = datasets.synthetic(96)
    G_full, full = run(model_cfg, train_cfg, split)

    state = interrupted(run, model_cfg, train_cfg, split, tmp_path / "train.pt", at=train_cfg.epochs)
    assert state["tick"] == train_cfg.epochs - 1
    G_resumed, resumed = run(model_cfg, train_cfg, split, resume_from=state)
    assert resumed.resumed_from == train_cfg.epochs - 1
    assert resumed.history == full.history and resumed.steps == full.steps
    assert all(torch.equal(a, b) for a, b in zip(full.generator.state_dict().values(),
                                                  resumed.generator.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(G_full.state_dict().values(), G_resumed.state_dict().values()))


def test_checkpoint_of_other_params_is_ignored(tmp_path, capsys):
    from ganpipe.gan import resume

    resume.save(tmp_path / "c.pt", {"fingerprint": "a", "epoch": 3})
    assert resume.load(tmp_path / "c.pt", "a")["epoch"] == 3
    assert resume.load(tmp_path / "c.pt", "b") is None
    assert "belongs to other params, data or training code" in capsys.readouterr().out
    (tmp_path / "c.pt").write_bytes(b"torn")
    assert resume.load(tmp_path / "c.pt", "a") is None


@pytest.mark.parametrize("changes", [dict(augment=("translation", "cutout")), dict(r1_weight=5.0),
                                     dict(loss="wgan-gp", gp_weight=10.0)])
def test_stabilisers_are_logged_and_repeatable(tiny_params, changes):
    model_cfg, train_cfg = tiny(tiny_params, **changes)
    split = datasets.synthetic(96)
    (_, a), (_, b) = run(model_cfg, train_cfg, split), run(model_cfg, train_cfg, split)
    assert a.history == b.history
    penalty = {"r1_weight": "penalty/r1", "gp_weight": "penalty/gp"}
    for key, name in penalty.items():
        assert (name in a.history[-1]) == (changes.get(key, 0) > 0)


def test_conditional_model_refuses_unlabelled_data(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params)
    assert model_cfg.conditional
    G, D = build(model_cfg, (1, 28, 28), 0, 10)
    with pytest.raises(ConfigError, match="model.conditional needs labelled data"):
        train(G, D, datasets.synthetic(64).images, train_cfg, model_cfg.z_dim, labels=None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_refused(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params, device="cuda")
    with pytest.raises(ConfigError, match="train.device is cuda but no CUDA GPU is visible"):
        run(model_cfg, train_cfg, datasets.synthetic(64))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_trains_on_cuda_with_mixed_precision(tiny_params, precision):
    model_cfg, train_cfg = tiny(tiny_params, device="cuda", precision=precision, r1_weight=1.0,
                                augment=("translation", "cutout"))
    G, result = run(model_cfg, train_cfg, datasets.synthetic(96))
    assert next(result.generator.parameters()).device.type == "cpu"  # handed back ready to save
    assert all(math.isfinite(v) for row in result.history for v in row.values())
    assert next(G.parameters()).device.type == "cuda"


# 160 images in batches of 32: 5 steps a pass, so 3 epochs are 15 steps = 0.48 kimg; the schedule moves over them
KIMG_RUN = dict(schedule_images=400, lr_end=1e-4, beta2_end=0.99)


def _no_unit(history):
    return [{k: v for k, v in row.items() if k not in ("epoch", "tick")} for row in history]


def test_kimg_and_epochs_give_the_same_schedule_positions_and_weights(tiny_params):
    model_cfg, by_epochs = tiny(tiny_params, epochs=3, **KIMG_RUN)
    split = datasets.synthetic(160)
    same_ticks = dataclasses.replace(by_epochs, epochs=None, kimg=0.48, tick_kimg=0.16)
    finer = dataclasses.replace(same_ticks, tick_kimg=0.128)  # ticks end at 4, 8, 12 and 15 steps: inside passes
    (G_e, e), (G_k, k), (G_f, f) = (run(model_cfg, c, split) for c in (by_epochs, same_ticks, finer))
    assert [row["epoch"] for row in e.history] == [1, 2, 3] and [row["tick"] for row in k.history] == [1, 2, 3]
    assert _no_unit(e.history) == _no_unit(k.history)  # losses, schedule values and kimg at every tick
    assert [row["progress/kimg"] for row in f.history] == [0.128, 0.256, 0.384, 0.48]
    assert f.history[-1]["schedule/g_lr"] == e.history[-1]["schedule/g_lr"] == pytest.approx(1e-4)
    assert 2e-4 > e.history[0]["schedule/g_lr"] > 1e-4  # the schedule was still moving after the first pass
    assert e.steps == k.steps == f.steps == 15 and k.length.describe() == "0.48 kimg (3 ticks)"
    for G in (G_k, G_f):  # ticks only decide when numbers are read: the training is the same
        assert all(torch.equal(a, b) for a, b in zip(G_e.state_dict().values(), G.state_dict().values()))


def test_kimg_ends_inside_a_pass_and_rounds_up_to_whole_batches(tiny_params):
    model_cfg, train_cfg = tiny(tiny_params, epochs=None, kimg=0.1, tick_kimg=0.064)
    _, result = run(model_cfg, train_cfg, datasets.synthetic(160))
    # 100 images are 3.125 batches of 32: 4 steps, at least the images asked for; ticks of 2 steps
    assert result.steps == 4 and [row["tick"] for row in result.history] == [1, 2]
    assert result.history[-1]["progress/kimg"] == 0.128


def test_a_kimg_run_resumes_bitwise_from_inside_a_pass(tiny_params, tmp_path):
    model_cfg, train_cfg = tiny(tiny_params, epochs=None, kimg=0.48, tick_kimg=0.096, augment=("translation",),
                                **KIMG_RUN)
    split = datasets.synthetic(160)
    G_full, full = run(model_cfg, train_cfg, split)

    state = interrupted(run, model_cfg, train_cfg, split, tmp_path / "train.pt", at=4)
    assert state["tick"] == 3 and state["steps"] == 9 and state["steps"] % 5  # 9 steps: inside the second pass
    G_resumed, resumed = run(model_cfg, train_cfg, split, resume_from=state)
    assert resumed.resumed_from == 3 and resumed.history == full.history
    assert all(torch.equal(a, b) for a, b in zip(G_full.state_dict().values(), G_resumed.state_dict().values()))
