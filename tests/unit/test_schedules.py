"""R3GAN's schedules (gan/schedules.py): the official cosine, the EMA half-life, and the train keys that set them."""
from __future__ import annotations

import math

import pytest

from ganpipe.errors import ConfigError
from ganpipe.gan.schedules import Schedules, cosine, ema_beta
from ganpipe.params import config


def test_the_cosine_starts_ends_and_holds_as_the_official_schedule():
    assert cosine(2e-4, 5e-5, 0, 1000) == 2e-4
    assert math.isclose(cosine(2e-4, 5e-5, 500, 1000), (2e-4 + 5e-5) / 2)  # halfway: the mean
    assert math.isclose(cosine(0.9, 0.99, 250, 1000), 0.9 + (1 - 0.5 * (1 + math.cos(math.pi / 4))) * 0.09)
    assert cosine(2e-4, 5e-5, 1000, 1000) == 5e-5 and cosine(2e-4, 5e-5, 10**9, 1000) == 5e-5
    assert cosine(1.0, 3.0, 7, 0) == 3.0
    values = [cosine(0.0, 1.0, i, 100) for i in range(101)]
    assert values == sorted(values)  # monotone


def test_the_ema_half_life_halves_an_old_weights_share():
    beta = ema_beta(64, 6400)
    assert math.isclose(beta ** (6400 / 64), 0.5)
    assert ema_beta(64, 0) == 0.0  # a half-life of 0: the EMA is G itself


def train_cfg(default_params, **changes):
    return config.from_dict({**default_params, "train": {**default_params["train"], **changes}}).train


def test_schedules_move_only_what_has_an_end_value(default_params):
    cfg = train_cfg(default_params, schedule_images=1000, lr_end=5e-5, gamma_end=0.005, ema_decay=None,
                    ema_halflife=0.0, ema_halflife_end=500.0, augment=["ada"], ada_target=None, ada_p=0.0,
                    ada_p_end=0.3)
    s = Schedules(cfg)
    start, mid, end = s.at(0), s.at(500), s.at(5000)
    assert (start.g_lr, start.d_lr, start.gamma, start.ema_halflife, start.augment_p) == (2e-4, 2e-4, 0.05, 0.0, 0.0)
    assert math.isclose(mid.gamma, (0.05 + 0.005) / 2) and math.isclose(mid.augment_p, 0.15)
    assert (end.g_lr, end.gamma, end.ema_halflife, end.augment_p) == (5e-5, 0.005, 500.0, 0.3)
    assert start.g_beta2 == end.g_beta2 == 0.9  # no beta2_end: constant
    assert set(s.logged(500)) == {"schedule/g_lr", "schedule/d_lr", "schedule/gamma", "schedule/ema_halflife"}


def test_without_a_schedule_every_value_is_its_constant(default_params):
    s = Schedules(train_cfg(default_params))
    v = s.at(10**6)
    assert (v.g_lr, v.d_lr, v.g_beta2, v.gamma, v.ema_halflife, v.augment_p) == (2e-4, 2e-4, 0.9, 0.05, None, None)
    assert s.logged(10**6) == {}


@pytest.mark.parametrize("changes, message", [
    (dict(lr_end=5e-5), "train.schedule_images must be > 0 (the images over which the schedule runs) when "
                        "train.lr_end is set"),
    (dict(schedule_images=100, beta2_end=1.0), "train.beta2_end must be null or in [0, 1)"),
    (dict(ema_halflife=1000.0), "train.ema_decay must be null when train.ema_halflife is set"),
    (dict(ema_decay=None, ema_halflife_end=10.0, schedule_images=10), "train.ema_halflife must be set"),
    (dict(ada_p=1.5), "train.ada_p must be in [0, 1]"),
    (dict(ada_target=0.6, ada_p_end=0.5, schedule_images=10), "train.ada_p_end must be null when train.ada_target"),
    (dict(augment=["ada", "cutout"]), "train.augment must be [ada] alone"),
    (dict(ada_pipe="bgcfnc"), "train.ada_pipe must be one of ['bgc', 'bgcc']"),
])
def test_bad_schedule_and_ada_keys_name_the_key(default_params, changes, message):
    with pytest.raises(ConfigError) as err:
        train_cfg(default_params, **changes)
    assert message in str(err.value)
