"""R3GAN's schedules: the learning rates, Adam's beta2, the penalty weight gamma, the EMA half-life and the
augmentation probability each move from a start value to an end value over a number of images shown, along a
half cosine, and then hold the end value (the official code's cosine_decay_with_warmup, without its warm-up,
which no preset uses). A value is a pure function of the images shown, which the resume state holds, so a
resumed run sets exactly the values the uninterrupted one did.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ganpipe.params.config import TrainConfig


def cosine(start: float, end: float, images: float, over: float) -> float:
    """start at 0 images, end at `over` images and after, a half cosine between (flat at both ends, so a
    schedule neither jumps when it starts nor when it stops). over = 0: end from the first image."""
    if over <= 0 or images >= over:
        return end
    return start + (1 - 0.5 * (1 + math.cos(math.pi * images / over))) * (end - start)


def ema_beta(batch: int, halflife_images: float) -> float:
    """The EMA's per-step decay for a half-life in images: after `halflife_images` images (halflife / batch
    steps) an old weight's share has halved. A half-life of 0 gives 0: the EMA is G itself."""
    return 0.5 ** (batch / max(halflife_images, 1e-8))


@dataclass(frozen=True)
class Values:
    """What one step trains with."""
    g_lr: float
    d_lr: float
    g_beta2: float
    d_beta2: float
    gamma: float
    ema_halflife: float | None  # images; None: train.ema_decay's warmed-up constant decay (or no EMA)
    augment_p: float | None  # ADA's scheduled probability; None: not scheduled (fixed or adaptive)


class Schedules:
    """The values of train's scheduled keys after a number of images shown. With train.schedule_images = 0 or
    every *_end null, each value is its train.* constant."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        over = cfg.schedule_images
        # a key without an end value stays at its start: cosine(v, v, ...) = v
        end = lambda start, value: start if value is None else value  # noqa: E731
        self._lr = [(cfg.g_lr, end(cfg.g_lr, cfg.lr_end)), (cfg.d_lr, end(cfg.d_lr, cfg.lr_end))]
        self._beta2 = [(cfg.g_betas[1], end(cfg.g_betas[1], cfg.beta2_end)),
                       (cfg.d_betas[1], end(cfg.d_betas[1], cfg.beta2_end))]
        self._gamma = (cfg.gamma, end(cfg.gamma, cfg.gamma_end))
        self._ema = None if cfg.ema_halflife is None else (cfg.ema_halflife, end(cfg.ema_halflife, cfg.ema_halflife_end))
        self._p = (cfg.ada_p, end(cfg.ada_p, cfg.ada_p_end)) if scheduled_p(cfg) else None
        self.over = over

    def at(self, images: int) -> Values:
        c = lambda pair: cosine(pair[0], pair[1], images, self.over)  # noqa: E731
        return Values(g_lr=c(self._lr[0]), d_lr=c(self._lr[1]), g_beta2=c(self._beta2[0]), d_beta2=c(self._beta2[1]),
                      gamma=c(self._gamma), ema_halflife=None if self._ema is None else c(self._ema),
                      augment_p=None if self._p is None else c(self._p))

    def logged(self, images: int) -> dict[str, float]:
        """The scheduled values that move (have an end value), named as the history logs them."""
        if self.over <= 0:
            return {}
        v, cfg = self.at(images), self.cfg
        out = {}
        if cfg.lr_end is not None:
            out.update({"schedule/g_lr": v.g_lr, "schedule/d_lr": v.d_lr})
        if cfg.beta2_end is not None:
            out["schedule/beta2"] = v.g_beta2
        if cfg.gamma_end is not None:
            out["schedule/gamma"] = v.gamma
        if cfg.ema_halflife_end is not None and v.ema_halflife is not None:
            out["schedule/ema_halflife"] = v.ema_halflife
        return out


def scheduled_p(cfg: TrainConfig) -> bool:
    """ADA's p follows the schedule (ada_p_end set); adaptive p (ada_target) and fixed p do not."""
    return "ada" in cfg.augment and cfg.ada_target is None and cfg.ada_p_end is not None
