"""How long a training runs and where its ticks fall.

The length is train.epochs (passes over the training split) or train.kimg (thousands of images shown, StyleGAN's
and R3GAN's unit: an epoch of a million images is no useful unit). Either way the loop runs G steps over the same
batch order: a pass is a fresh permutation of the training split cut into batches (the ragged last one dropped),
and a kimg run ends wherever its images run out, in the middle of a pass if need be. So a kimg that equals a
number of whole epochs trains bitwise the same weights as those epochs.

A tick is the unit of logging: a history row, an MLflow step, a chance for the grid and checkpoint clocks. With
epochs a tick is an epoch; with kimg it is train.tick_kimg thousand images (and the last tick may be shorter).
Images shown count as the schedules count them: G steps x batch_size (gan/schedules.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ganpipe.data import stream
from ganpipe.params.config import TrainConfig


@dataclass(frozen=True)
class Length:
    per_pass: int  # G steps in one pass over the training split
    total: int  # G steps of the whole training
    per_tick: int  # G steps between log rows
    unit: str  # "epoch" | "tick": what the history's first column, the progress bar and the messages count
    batch_size: int

    @property
    def ticks(self) -> int:
        return math.ceil(self.total / self.per_tick)

    def tick_of(self, steps: int) -> int:
        """The ticks completed after `steps` G steps (a tick ends at a multiple of per_tick, or at the end)."""
        return self.ticks if steps >= self.total else steps // self.per_tick

    def tick_end(self, steps: int) -> int:
        """The G step at which the tick that `steps` lies in ends."""
        return min(self.total, (steps // self.per_tick + 1) * self.per_tick)

    def kimg(self, steps: int) -> float:
        return steps * self.batch_size / 1000

    def describe(self) -> str:
        if self.unit == "epoch":
            return f"{self.ticks} epoch{'s' * (self.ticks != 1)}"
        return f"{self.kimg(self.total):g} kimg ({self.ticks} tick{'s' * (self.ticks != 1)})"


def length(cfg: TrainConfig, n_train: int) -> Length:
    """The steps of a training on `n_train` images (n_train >= batch_size: plan() checks that first)."""
    B = cfg.batch_size
    per_pass = n_train // B
    if cfg.kimg is None:
        return Length(per_pass, cfg.epochs * per_pass, per_pass, "epoch", B)
    # whole images (0.288 kimg is 287.99999999999997 in floats), then whole steps rounded up: at least the images
    # asked for, and at least one step
    total = max(1, -(-round(cfg.kimg * 1000) // B))
    return Length(per_pass, total, min(total, max(1, round(cfg.tick_kimg * 1000 / B))), "tick", B)


def pass_batches(feed: stream.Indexed | stream.Streamed, n: int, span: Length, state: Any, order: torch.Generator,
                 B: int, mine: slice) -> Iterator[stream.Batch]:
    """Every batch from state.steps to the end, pass by pass, each pass a fresh permutation drawn when its first
    batch is asked for; where the current pass's order began is kept (state.pass_order) for a resume inside it.
    `state` is the loop's: its G steps so far (state.steps) and that pass order."""
    steps, first = state.steps, state.steps % span.per_pass
    if first:  # resumed inside a pass: draw its order again from its start
        order.set_state(state.pass_order)
    while steps < span.total:
        if first == 0:
            state.pass_order = order.get_state()
        perm = torch.randperm(n, generator=order)
        last = min(span.per_pass, first + span.total - steps)
        yield from feed.batches(stream.Pass(perm, first, last, B, mine))
        steps, first = steps + last - first, 0
