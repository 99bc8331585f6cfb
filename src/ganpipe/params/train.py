"""The train section of params.yaml: how the GAN trains, its schedules and its augmentation, strictly checked."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ganpipe.params.rules import (
    ADA_PIPES,
    AUGMENTS,
    BACKENDS,
    COMPILE_MODES,
    DEVICES,
    LOSSES,
    MAX_INTERVAL_S,
    MAX_LR,
    MAX_SEED,
    MAX_THREADS,
    PRECISIONS,
    SCORES,
    check_length,
    check_score_clock,
    check_schedules,
)
from ganpipe.params.rules import positive as _positive
from ganpipe.params.rules import require as _require
from ganpipe.params.rules import within as _within


@dataclass(frozen=True)
class TrainConfig:
    loss: str
    # the training length, one of the two (the other null): passes over the training split, or thousands of images
    # shown (batches drawn x batch_size, as StyleGAN and R3GAN count it; gan/length.py)
    epochs: Optional[int]
    kimg: Optional[float]
    tick_kimg: float  # with kimg: thousands of images between log rows, grids and checkpoints (StyleGAN's tick)
    batch_size: int
    g_lr: float
    d_lr: float
    g_betas: tuple[float, float]
    d_betas: tuple[float, float]
    d_steps: int  # D updates per G update
    gp_weight: float  # WGAN-GP gradient penalty on real/fake interpolations; 0 = off
    r1_weight: float  # R1 penalty (gamma) on D's gradient at real images; 0 = off
    gamma: float  # loss rpgan: weight of its zero-centred R1 (real) and R2 (fake) penalties, gamma/2 * (R1 + R2)
    augment: tuple[str, ...]  # DiffAugment policies ([translation, cutout]) or [ada], applied to every image D sees
    ema_decay: Optional[float]  # keep an exponential moving average of G's weights; sampling uses it. null = off
    precision: str  # auto = bf16 where the device does it natively, else fp32 | fp32 | bf16 (autocast)
    compile: str  # none | a torch.compile mode for the step's forward passes
    deterministic: bool  # GPU: deterministic kernels only, so a run repeats bitwise (CPUs always do)
    device: str  # auto = cuda when a GPU is visible, else cpu
    checkpoint_every_s: float  # seconds between resume checkpoints, taken at an epoch's end; 0 = every epoch
    grid_every_s: float  # seconds between the per-epoch image grids (the first and last always); 0 = every epoch
    seed: int
    threads: int  # per process
    processes: int  # training processes per machine; > 1 (or nodes > 1) runs under torchrun with DDP
    nodes: int  # machines taking part; > 1 needs `rendezvous`
    rendezvous: Optional[str]  # host:port where node 0 (the machine running dvc) listens; null: this machine only
    backend: str
    sync_batchnorm: bool  # batch-norm statistics over the global batch instead of each process's slice
    timeout_s: int  # a collective waiting longer than this (a crashed or hung process) ends every process
    # R3GAN's schedules (gan/schedules.py): each *_end value is reached along a half cosine after schedule_images
    # images shown, then held; an end of null keeps the start value
    schedule_images: int  # 0 = no schedule: every value stays at its start
    lr_end: Optional[float]  # g_lr and d_lr each move to this
    beta2_end: Optional[float]  # the second Adam beta of G and D moves to this
    gamma_end: Optional[float]  # gamma moves to this
    ema_halflife: Optional[float]  # images: the EMA's half-life (R3GAN's EMA, instead of ema_decay); null = ema_decay
    ema_halflife_end: Optional[float]  # the half-life moves to this
    # ADA (augment: [ada]; gan/augment/ada.py): each augmentation is applied with probability p x its multiplier
    ada_p: float  # p's start value (adaptive and scheduled), or p itself when neither
    ada_target: Optional[float]  # adaptive: p keeps r_t (losses.ada_evidence) at this (0.6 in the paper); null = off
    ada_p_end: Optional[float]  # scheduled: p moves from ada_p to this over schedule_images (R3GAN's presets)
    ada_pipe: str  # bgc (StyleGAN2-ADA's default) | bgcc (R3GAN's: colour at half strength, and cutout)
    # the FID during training (eval/during.py): of score_n samples of the EMA generator, at tick ends
    score: str  # auto | none | classifier | inception
    score_n: int
    score_every_kimg: Optional[float]  # at fixed images shown (repeats: sample.from: best needs it); or
    score_every_s: Optional[float]  # on a clock (seconds), like grid_every_s

    @property
    def world_size(self) -> int:
        return self.processes * self.nodes

    def __post_init__(self) -> None:
        _require(self.loss in LOSSES, "train.loss", f"must be one of {list(LOSSES)}", self.loss)
        _require(self.precision in PRECISIONS, "train.precision", f"must be one of {list(PRECISIONS)}",
                 self.precision)
        _require(self.compile in COMPILE_MODES, "train.compile", f"must be one of {list(COMPILE_MODES)}", self.compile)
        _require(self.device in DEVICES, "train.device", f"must be one of {list(DEVICES)}", self.device)
        for key in ("checkpoint_every_s", "grid_every_s"):
            value = getattr(self, key)
            _require(0 <= value <= MAX_INTERVAL_S, f"train.{key}", f"must be in [0, {MAX_INTERVAL_S:,.0f}] seconds",
                     value)
        for policy in self.augment:
            _require(policy in AUGMENTS, "train.augment", f"entries must be in {list(AUGMENTS)}", list(self.augment))
        _require("ada" not in self.augment or len(self.augment) == 1, "train.augment", "must be [ada] alone: ADA "
                 "has its own translation and cutout", list(self.augment))
        _require(self.ada_pipe in ADA_PIPES, "train.ada_pipe", f"must be one of {list(ADA_PIPES)}", self.ada_pipe)
        check_schedules(self)
        _require(self.score in SCORES, "train.score", f"must be one of {list(SCORES)}", self.score)
        check_score_clock(self)
        _require(self.gp_weight >= 0 and self.r1_weight >= 0, "train.gp_weight and train.r1_weight",
                 "must be >= 0", (self.gp_weight, self.r1_weight))
        _require(0 <= self.gamma <= 1e6, "train.gamma", "must be in [0, 1e6]", self.gamma)
        _positive(self, "train", ("batch_size", "g_lr", "d_lr"))
        for key in ("g_lr", "d_lr"):
            _require(getattr(self, key) <= MAX_LR, f"train.{key}", f"must be at most {MAX_LR}", getattr(self, key))
        check_length(self)
        _within(self, "train", ("d_steps",), 1, 100)
        _within(self, "train", ("threads",), 1, MAX_THREADS)
        _within(self, "train", ("seed",), 0, MAX_SEED)
        for key in ("g_betas", "d_betas"):
            betas = getattr(self, key)
            _require(all(0 <= b < 1 for b in betas), f"train.{key}", "must be two numbers in [0, 1)", list(betas))
        _require(self.ema_decay is None or 0 < self.ema_decay < 1, "train.ema_decay", "must be in (0, 1) or null",
                 self.ema_decay)
        _require(self.backend in BACKENDS, "train.backend", f"must be one of {list(BACKENDS)}", self.backend)
        _within(self, "train", ("processes", "nodes"), 1, 4096)
        _within(self, "train", ("timeout_s",), 10, 86_400)
        _require(self.nodes == 1 or (self.rendezvous is not None and re.fullmatch(r"[^\s:]+:\d{1,5}", self.rendezvous)),
                 "train.rendezvous", "must be host:port (where node 0 listens) when train.nodes > 1", self.rendezvous)
        # each process takes an equal slice of every global batch; batch norm needs 2 images per slice
        world = self.world_size
        _require(self.batch_size % world == 0 and self.batch_size // world >= 2, "train.batch_size",
                 "must be at least 2 (batch norm needs 2 images)" if world == 1 else f"must split into equal slices "
                 f"of at least 2 images over the {world} processes (train.processes x train.nodes)", self.batch_size)
