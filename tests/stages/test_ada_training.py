"""Training with ADA (train.augment: [ada]) and R3GAN's schedules: it works with every architecture, p and the
scheduled values are logged per epoch, and an interrupted R3GAN run resumes to bitwise the same weights, p and
schedule values as an uninterrupted one (with DiffAugment and a constant EMA too)."""
from __future__ import annotations

import pytest
import torch

from ganpipe.data import datasets
from ganpipe.gan.models import build
from ganpipe.gan.train import train
from ganpipe.params import config

from helpers import R3GAN_TINY, hooked, interrupted

# every schedule moving, over about two of the three epochs below (48 images, batch 16: 3 steps an epoch, so
# an epoch ends between two of ADA's adjustments, every 4 steps)
SCHEDULED = dict(schedule_images=96, lr_end=5e-5, beta2_end=0.99, gamma_end=0.05, ema_decay=None, ema_halflife=0.0,
                 ema_halflife_end=200.0)


def cfgs(tiny_params, model=None, **train_changes):
    params = {**tiny_params, "model": {**tiny_params["model"], **(model or {})},
              "train": {**tiny_params["train"], "threads": 1, "epochs": 3, "batch_size": 16, "augment": ["ada"],
                        **train_changes}}
    cfg = config.from_dict(params)
    return cfg.model, cfg.train


def run(model_cfg, train_cfg, split, **kwargs):
    G, D = build(model_cfg, tuple(split.images.shape[1:]), train_cfg.seed, 10)
    return G, train(G, D, split.images, train_cfg, model_cfg.z_dim, labels=split.labels, **hooked(kwargs))


@pytest.mark.parametrize("arch, shape", [("mlp", (1, 28)), ("dcgan", (1, 28)), ("dcgan", (3, 32)),
                                         ("resnet", (3, 32)), ("r3gan", (3, 32))])
def test_ada_trains_every_architecture_and_logs_p(tiny_params, arch, shape):
    model = R3GAN_TINY if arch == "r3gan" else {"arch": arch}
    loss = {"loss": "rpgan", "gamma": 0.1} if arch == "r3gan" else {}
    model_cfg, train_cfg = cfgs(tiny_params, model, epochs=1, ada_p=0.5, ada_target=None, ada_pipe="bgcc", **loss)
    channels, size = shape
    _, result = run(model_cfg, train_cfg, datasets.synthetic(48, size=size, channels=channels))
    last = result.history[-1]
    assert last["augment/p"] == pytest.approx(0.5) and -1 <= last["augment/r_t"] <= 1
    assert all(v == v for v in last.values())


class Drifted(torch.nn.Module):
    """D with every logit moved by a constant: the same D to the rpgan loss and its penalties."""

    def __init__(self, D: torch.nn.Module, drift: float):
        super().__init__()
        self.D, self.drift = D, drift

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.D(x, y) + self.drift


def test_adaptive_p_under_rpgan_does_not_follow_a_drift_of_the_logits(tiny_params):
    """In training, r_t under rpgan pairs each real image with its fake (losses.ada_evidence): D's logits moved
    down or up by 30 log the same r_t and p, where the sign of D(real) alone would read -1 and +1."""
    model_cfg, train_cfg = cfgs(tiny_params, {"arch": "dcgan"}, loss="rpgan", gamma=0.1, ada_target=0.3)
    split = datasets.synthetic(48, size=28, channels=1)
    histories = []
    for drift in (-30.0, 30.0):
        G, D = build(model_cfg, tuple(split.images.shape[1:]), train_cfg.seed, 10)
        result = train(G, Drifted(D, drift), split.images, train_cfg, model_cfg.z_dim, labels=split.labels)
        histories.append([(row["augment/p"], row["augment/r_t"]) for row in result.history])
    (low, high) = histories
    assert [p for p, _ in low] == [p for p, _ in high] and max(p for p, _ in low) > 0  # p rose, the same way
    assert [r for _, r in low] == pytest.approx([r for _, r in high], abs=0.13)  # a near-tie pair may flip


def test_scheduled_p_and_values_follow_the_schedule(tiny_params):
    model_cfg, train_cfg = cfgs(tiny_params, R3GAN_TINY, loss="rpgan", gamma=0.5, ada_target=None, ada_p=0.0,
                                ada_p_end=0.4, **SCHEDULED)
    _, result = run(model_cfg, train_cfg, datasets.synthetic(48, size=32, channels=3))
    first, last = result.history[0], result.history[-1]
    assert 0 < first["augment/p"] < last["augment/p"] == pytest.approx(0.4)  # epoch means: rising, then held
    assert last["schedule/g_lr"] == 5e-5 and last["schedule/gamma"] == 0.05 and last["schedule/beta2"] == 0.99
    assert first["schedule/ema_halflife"] < last["schedule/ema_halflife"] == 200.0


@pytest.mark.parametrize("changes", [dict(augment=["translation"], ema_decay=0.9),  # DiffAugment, constant EMA
                                     dict(ada_p=0.2, **SCHEDULED)],  # adaptive ADA, every schedule
                         ids=["diffaugment", "ada-schedules"])
def test_an_interrupted_r3gan_run_resumes_bitwise(tiny_params, tmp_path, changes):
    model_cfg, train_cfg = cfgs(tiny_params, R3GAN_TINY, loss="rpgan", gamma=0.5, **changes)
    split = datasets.synthetic(48, size=32, channels=3)
    G_full, full = run(model_cfg, train_cfg, split)
    if "ada" in train_cfg.augment:
        assert len({row["augment/p"] for row in full.history}) > 1  # p moved

    state = interrupted(run, model_cfg, train_cfg, split, tmp_path / "train.pt", at=train_cfg.epochs)
    G_resumed, resumed = run(model_cfg, train_cfg, split, resume_from=state)
    assert resumed.history == full.history  # p, r_t and every scheduled value included
    for a, b in ((G_full, G_resumed), (full.generator, resumed.generator)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
