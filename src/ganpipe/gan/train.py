"""The GAN training loop. It reports numbers through callbacks and knows nothing about MLflow or files.

Speed: the whole uint8 training set sits on the training device (a GPU too, when it fits) and batches are
drawn there by indexing it, so there is no per-item Dataset/DataLoader work; a step (gan/step.py) never waits
for the device, and its numbers are summed as tensors and read once per tick (an epoch, or train.tick_kimg
thousand images with train.kimg: gan/length.py). The per-tick work that does not shape training (image grids
with the EMA's batch-norm re-estimate, resume checkpoints) runs on a clock (train.grid_every_s,
train.checkpoint_every_s), so ticks of a second on a GPU are not dominated by it. Every
random draw comes from an explicit generator whose state is part of the resume checkpoint, so an interrupted
and resumed run ends with bitwise the same weights as an uninterrupted one.

On several processes (`replicas`, see ganpipe.distributed) every rank draws the same global batch order and the
same global noise and takes its own equal slice of each, so N processes follow the one-process run's data order;
DistributedDataParallel averages the gradients, so every rank holds the same G, D and EMA weights after every
step. Only the caller's rank 0 passes hooks that log or save.

One entry, `train`: the caller checks the device and the fit once with `plan` (before it opens a tracking run)
and hands the plan in; what the caller wants to see or keep goes in `Hooks`. The body is in named sections:
restore, the step (D step and G step, gan/step.py), end of tick.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn
from tqdm import tqdm

from ganpipe import gpus
from ganpipe.data import stream
from ganpipe.data.images import to_float
from ganpipe.distributed.group import SOLO, Replicas
from ganpipe.errors import ConfigError, DivergenceError
from ganpipe.gan import compiled, devices, resume, syncnorm
from ganpipe.gan.ema import EMA
from ganpipe.gan.length import Length, length, pass_batches
from ganpipe.gan.models import classes_drawn
from ganpipe.gan.sampling import render
from ganpipe.gan.schedules import Schedules
from ganpipe.gan.scoring import Clock, Every, Scorer, Scores
from ganpipe.gan.step import Step, step_names
from ganpipe.params.config import TrainConfig
from ganpipe.params.sizes import check_batch_fits

LogFn = Callable[[int, dict[str, float]], None]  # (tick, {"loss/d": ...}); a tick is an epoch unless train.kimg
ImageFn = Callable[[int, torch.Tensor], None]  # (tick, uint8 [N, C, H, W] fixed-noise samples)
SaveFn = Callable[[dict], None]  # receives the resume state after a tick
ScoreFn = Callable[[float, float], None]  # (kimg shown, the score) after each score during training
StepFn = Callable[[int, nn.Module, nn.Module, "EMA | None"], None]  # (step, G, D, ema) after each G update
KIMG = "progress/kimg"  # each history row's images shown so far, in thousands: runs compare by it whatever their unit
RANK_SEED = 7919  # per-rank streams (DiffAugment, dropout) are seeded seed + k + RANK_SEED * rank


@dataclass
class Hooks:
    """What the caller sees and keeps of a training. Every hook is optional: the default trains silently."""
    log: LogFn | None = None  # per-tick numbers
    log_images: ImageFn | None = None  # fixed-noise samples at step 0 and on the grid clock
    grid: tuple[torch.Tensor, torch.Tensor] | None = None  # (z, labels) those samples are drawn from
    save_state: SaveFn | None = None  # the resume state, on the checkpoint clock and at the end
    after_step: StepFn | None = None  # observers (tests): every rank's networks after each step
    score: Scorer | None = None  # the score during training (rank 0), when train.score is on (gan/scoring.py)
    on_score: ScoreFn | None = None  # each score once made (rank 0): `ganpipe tune` reports it and may prune
    progress: bool = False  # a tqdm bar over the ticks


@dataclass(frozen=True)
class Plan:
    """The device and precision a training runs with, decided once (plan()) after checking that it can."""
    device: torch.device
    precision: devices.Precision


@dataclass
class TrainResult:
    # one row per tick: epoch (or tick), loss/d, loss/g, d/real, d/fake[, penalties, schedules], progress/kimg
    history: list[dict[str, float]]
    steps: int  # G updates
    images_seen: int  # real images shown to D
    generator: nn.Module  # what sampling should use (on the CPU): the EMA copy of G when enabled, else G
    resumed_from: int  # the tick (epoch) the run continued from (0 = started fresh)
    resumed_steps: int  # the G steps done before this call
    length: Length  # the training's steps and ticks
    precision: devices.Precision  # what train.precision resolved to on this device, and why
    seconds: float  # wall time of the ticks this call ran
    tick_work_s: float  # of which: per-tick work (grids, EMA re-estimate, checkpoints, scores, logging callbacks)
    score_s: float  # of which: the scores during training (with their EMA re-estimates)
    scores: Scores  # the scores during training and the best-scored weights (none without hooks.score)


def check_fits(cfg: TrainConfig, n_train: int, num_classes: int, conditional: bool) -> None:
    """Refuse what the data cannot support, before any work starts."""
    check_batch_fits("train.batch_size", cfg.batch_size, n_train)
    if conditional and num_classes < 2:
        raise ConfigError(f"model.conditional needs labelled data with at least 2 classes, but the data has "
                          f"{num_classes}; set model.conditional: false")


def plan(cfg: TrainConfig, n_train: int, num_classes: int, conditional: bool, world: int = 1) -> Plan:
    """Check that the data fits the params and that the device exists and can run train.compile; resolve the
    precision there. A ConfigError names what to change."""
    check_fits(cfg, n_train, num_classes, conditional)
    device = devices.resolve(cfg.device)  # cuda without a GPU fails here
    if world == 1:  # one GPU per training process (torchrun's workers take their local rank's)
        device = gpus.claim_gpu(device)
    compiled.check(cfg.compile, device, world)
    return Plan(device, devices.resolve_precision(cfg.precision, device))


def fixed_noise(n: int, z_dim: int, seed: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same (z, labels) every tick and run with this seed, so grids compare across ticks and runs.
    Labels cycle through the classes, so a grid with num_classes columns shows one class per column."""
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    return z, torch.arange(n) % num_classes


@dataclass
class _Streams:
    """Every random generator of a training, each seeded once and saved in the resume state."""
    order: torch.Generator  # batch order (CPU: the same order on every device)
    noise: torch.Generator  # z, fake labels, GP interpolation weights
    augment: torch.Generator  # DiffAugment (per rank)

    def states(self) -> dict:
        return resume.rng_states(self.order, self.noise, self.augment)


@dataclass
class _State:
    history: list[dict[str, float]] = field(default_factory=list)
    tick: int = 0
    steps: int = 0
    pass_order: torch.Tensor | None = None  # the order stream's state where the current pass began
    scores: Scores = field(default_factory=Scores)
    tick_began: int = 0  # the G steps at the current tick's start


def _restore(saved: dict, G: nn.Module, D: nn.Module, ema: EMA | None, streams: _Streams,
             replicas: Replicas) -> _State:
    """Continue from a resume state: the weights, the EMA and every random stream."""
    G.load_state_dict(saved["G"])
    D.load_state_dict(saved["D"])
    if ema is not None:
        ema.load_state_dict(saved["ema"])
    rngs = saved["rng"]  # one entry per rank of the run that saved it
    if len(rngs) == replicas.world:
        resume.restore_rng(rngs[replicas.rank], streams.order, streams.noise, streams.augment)
    else:  # the shared streams continue; the per-rank ones (augment, dropout) restart from this rank's seed
        resume.restore_shared_rng(rngs[0], streams.order, streams.noise)
    return _State(list(saved["history"]), saved["tick"], saved["steps"], saved["pass_order"])


def train(
    G: nn.Module,
    D: nn.Module,
    images: torch.Tensor,  # uint8 [N, C, H, W], the training split
    cfg: TrainConfig,
    z_dim: int,
    labels: torch.Tensor | None = None,  # int64 [N]; required by conditional models
    hooks: Hooks | None = None,
    resume_from: dict | None = None,
    replicas: Replicas = SOLO,
    checked: Plan | None = None,  # from plan(); None: plan here
    rows: stream.Rows | None = None,  # where `images` lie in their file, when they are memory-mapped from it
) -> TrainResult:
    hooks = hooks or Hooks()
    drawn = classes_drawn(G)
    conditional = drawn is not None
    num_classes = drawn or 1  # unconditional: the labels are never read
    if conditional and labels is None:
        raise ConfigError("model.conditional needs labelled data (a class per image); set model.conditional: false")
    checked = checked or plan(cfg, len(images), num_classes, conditional, replicas.world)
    device, precision = checked.device, checked.precision
    devices.set_deterministic(device, cfg.deterministic)
    labels = torch.zeros(len(images), dtype=torch.int64) if labels is None else labels
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + RANK_SEED * replicas.rank)  # the global RNG is used only by dropout
    # channels-last (NHWC) is the layout the fast conv kernels of oneDNN (CPU) and cuDNN (GPU) work in
    # (measured here: +20-30% images/s in bf16 for the default DCGAN; see benchmarks/arch_speed.py)
    fmt = torch.channels_last
    if cfg.sync_batchnorm and replicas.world > 1:
        syncnorm.convert(G), syncnorm.convert(D)
    G.to(device, memory_format=fmt).train()
    D.to(device, memory_format=fmt).train()
    # the images stay uint8 (4x smaller than float), where they are or streamed from their file (data/stream.py),
    # and each batch is converted as it is drawn, so no pass copies the dataset
    on_device = devices.holds(device, images.numel())
    feed = (stream.Streamed(images, labels, device, rows) if stream.streams(rows is not None, on_device)
            else stream.Indexed(images.to(device) if on_device else images, labels, device))
    streams = _Streams(torch.Generator().manual_seed(cfg.seed), devices.generator(device, cfg.seed + 1),
                       devices.generator(device, cfg.seed + 2 + RANK_SEED * replicas.rank))
    # R3GAN's EMA (ema_halflife) sets its decay every step through the schedules; ema_decay is a warmed-up constant
    ema = EMA(G, cfg.ema_decay or 0.0) if cfg.ema_decay is not None or cfg.ema_halflife is not None else None
    state = _restore(resume_from, G, D, ema, streams, replicas) if resume_from is not None else _State()
    state.scores = Scores.restore(resume_from and resume_from["scores"],
                                  hooks.score.protocol() if hooks.score is not None else {})
    step = Step(G, D, cfg, precision.used, z_dim, num_classes, replicas, streams.noise, streams.augment, ema)
    if resume_from is not None:
        step.load_optimizers(resume_from)
    resumed_steps = state.steps
    shown = ema.model if ema is not None else G  # the network grids (and later sampling) use
    B, mine = cfg.batch_size, step.mine
    span = length(cfg, len(images))
    names = step_names(cfg)
    start_tick = state.tick
    bar = tqdm(total=span.ticks, initial=start_tick, desc="train", unit=span.unit, disable=not hooks.progress)
    began = time.perf_counter()
    schedules = Schedules(cfg)
    loop = _Loop(cfg, hooks, replicas, G, D, ema, step, streams, shown, z_dim, num_classes,
                 Every(cfg.grid_every_s), Every(cfg.checkpoint_every_s), Clock(cfg), schedules, span)
    if hooks.log_images is not None and hooks.grid is not None and start_tick == 0:
        # step 0: what the untrained G draws; the MLflow UI's step slider also opens at 0 (no RNG is consumed)
        hooks.log_images(0, render(shown, *hooks.grid))
        loop.work = time.perf_counter() - began
    batches = pass_batches(feed, len(images), span, state, streams.order, B, mine)
    try:
        _run(loop, state, batches, bar, names, device, fmt)
    finally:  # the bar ends its line before any error message is printed
        feed.close()
        bar.close()
    shown.cpu()
    return TrainResult(history=state.history, steps=state.steps, images_seen=state.steps * cfg.d_steps * B,
                       generator=shown, resumed_from=start_tick, resumed_steps=resumed_steps, length=span,
                       precision=precision, seconds=time.perf_counter() - began, tick_work_s=loop.work,
                       score_s=loop.score_s, scores=state.scores)


def _run(loop: "_Loop", state: _State, batches: Iterator[stream.Batch], bar: tqdm, names: list[str],
         device: torch.device, fmt: torch.memory_format) -> None:
    """The ticks: each one's steps, then its numbers read once and the end-of-tick work (timed in loop.work)."""
    span, step, schedules, hooks, replicas = loop.span, loop.step, loop.schedules, loop.hooks, loop.replicas
    B = span.batch_size
    while state.steps < span.total:
        end, state.tick_began = span.tick_end(state.steps), state.steps
        sums = torch.zeros(len(names), device=device)  # per-step numbers summed over the tick
        count = end - state.steps
        while state.steps < end:
            images, labels = next(batches)
            real = to_float(images).contiguous(memory_format=fmt)
            step.apply(schedules.at(state.steps * B))  # a function of the images shown: resumes exactly
            sums += step(real, labels)
            state.steps += 1
            if hooks.after_step is not None:
                hooks.after_step(state.steps, loop.G, loop.D, loop.ema)
        row = dict(zip(names, (replicas.mean_(sums) / count).tolist()))  # over the global batches (one sync)
        tick_end = time.perf_counter()  # the device has finished the tick's steps: what follows is overhead
        state.tick = span.tick_of(state.steps)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
        loop.end_of_tick(row, state)
        loop.work += time.perf_counter() - tick_end


@dataclass
class _Loop:
    """What the end of a tick works with, gathered once by train()."""
    cfg: TrainConfig
    hooks: Hooks
    replicas: Replicas
    G: nn.Module
    D: nn.Module
    ema: EMA | None
    step: Step
    streams: _Streams
    shown: nn.Module  # the network the grids draw with: the EMA copy of G when enabled
    z_dim: int
    num_classes: int
    grids: Every
    checkpoints: Every
    scoring: Clock
    schedules: Schedules
    span: Length
    work: float = 0.0  # seconds of per-tick work so far (the step-0 grid included)
    score_s: float = 0.0  # of which: scores

    def end_of_tick(self, row: dict[str, float], state: _State) -> None:
        """Check the tick's numbers, report them, and on the clocks (always after the last tick) draw the grid
        and save the resume state."""
        _end_of_tick(self, row, state)


def _end_of_tick(loop: _Loop, row: dict[str, float], state: _State) -> None:
    cfg, hooks, replicas, ema, shown = loop.cfg, loop.hooks, loop.replicas, loop.ema, loop.shown
    tick, unit = state.tick, loop.span.unit
    if not all(math.isfinite(v) for v in row.values()):
        raise DivergenceError(f"training diverged at {unit} {tick}: {row}; lower the learning rates "
                              f"(train.g_lr, train.d_lr) or try train.loss: hinge")
    row = {**row, **loop.schedules.logged(state.steps * cfg.batch_size),  # where the schedules stand now
           KIMG: loop.span.kimg(state.steps)}
    state.history.append({unit: tick, **row})
    if hooks.log is not None:
        hooks.log(tick, row)
    last = state.steps == loop.span.total
    grids, checkpoints, scoring = loop.grids, loop.checkpoints, loop.scoring
    # rank 0's clock decides for every rank: the re-estimate and the checkpoint's gather are collectives
    draw, keep, timed = replicas.broadcast((grids.due(), checkpoints.due(), scoring.due_by_time()))
    B = cfg.batch_size
    score = scoring.on and (last or timed or scoring.due_by_images(state.tick_began * B, state.steps * B))
    if ema is not None and (draw or last or score):
        # the EMA's batch-norm statistics are re-estimated only when the EMA is shown: it shapes nothing
        # else, and the re-estimate is stateless, so the final generator is the same whichever ticks drew
        ema.recalibrate(loop.z_dim, cfg.batch_size, loop.num_classes)
    if draw or last:
        if hooks.log_images is not None and hooks.grid is not None:
            hooks.log_images(tick, render(shown, *hooks.grid))
        grids.done()
    if score:
        _score(loop, state)
    if keep or last:
        rngs = replicas.gather(loop.streams.states())  # every rank's streams (a collective: all ranks take part)
        if hooks.save_state is not None:
            hooks.save_state({"tick": tick, "steps": state.steps, "pass_order": state.pass_order,
                              "history": state.history, "scores": state.scores.state(),
                              "G": loop.G.state_dict(), "D": loop.D.state_dict(), **loop.step.optimizers_state(),
                              "ema": ema.state_dict() if ema is not None else None,
                              "rng": rngs, "world_size": replicas.world})
        checkpoints.done()


def _score(loop: _Loop, state: _State) -> None:
    """Score the shown generator (rank 0; the others only took part in the re-estimate), log it and keep the
    best weights."""
    scorer, began = loop.hooks.score, time.perf_counter()
    if scorer is not None:
        value = scorer(loop.shown)
        kimg = loop.span.kimg(state.steps)
        state.scores.add(state.tick, kimg, value, loop.shown)
        if loop.hooks.log is not None:
            loop.hooks.log(state.tick, {scorer.key: value})
        if loop.hooks.on_score is not None:
            loop.hooks.on_score(kimg, value)
    loop.scoring.done()
    loop.score_s += time.perf_counter() - began
