"""When the training loop scores its generator, and what it keeps of the scores: the curve and the best.

The score itself (a FID, lower is better) comes from the caller as a `Scorer` (ganpipe.eval.during builds one);
the loop only decides when: at the end of each tick where train.score_every_kimg thousand images have been
passed since the last score, or on a clock (train.score_every_s), and always at the last tick. Positions in
images shown repeat from run to run, so the best generator repeats too; a clock's positions do not.

A score changes nothing the training does: it draws from its own latents in eval mode, and the EMA's batch-norm
re-estimate before it is stateless (gan/ema.py). So a run trains bitwise the same weights with or without it.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Protocol

from torch import nn

from ganpipe.params.config import TrainConfig


class Scorer(Protocol):
    key: str  # the metric's name, e.g. score/fid1k_classifier

    def protocol(self) -> dict[str, str]: ...  # what the score means (space, n, reference and its hash)

    def __call__(self, G: nn.Module) -> float: ...


class Every:
    """Due when `seconds` have passed since it was last done (0: always); rank 0's clock decides for all ranks."""

    def __init__(self, seconds: float):
        self.seconds, self.last = seconds, time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self.last >= self.seconds

    def done(self) -> None:
        self.last = time.perf_counter()


class Clock:
    """When scores are due: every so many images shown (exact), or every so many seconds (rank 0's clock)."""

    def __init__(self, cfg: TrainConfig):
        self.on = cfg.score != "none"
        self.every_images = round(cfg.score_every_kimg * 1000) if self.on and cfg.score_every_kimg else None
        self.timer = Every(cfg.score_every_s) if self.on and cfg.score_every_s else None

    def due_by_images(self, before: int, after: int) -> bool:
        """Whether a multiple of the interval lies in (before, after] images shown."""
        return self.every_images is not None and after // self.every_images > before // self.every_images

    def due_by_time(self) -> bool:
        return self.timer is not None and self.timer.due()

    def done(self) -> None:
        if self.timer is not None:
            self.timer.done()


@dataclass
class Scores:
    """The scores so far (a row per score: tick, images shown in thousands, value) and the best of them with its
    generator's weights; part of the resume state, so a resumed run keeps its curve and its best."""
    protocol: dict[str, str] = field(default_factory=dict)  # the scorer's: a resume keeps scores of the same one
    rows: list[dict[str, float]] = field(default_factory=list)
    best: dict | None = None  # {"tick", "kimg", "value", "G": state dict on the CPU}

    def add(self, tick: int, kimg: float, value: float, G: nn.Module) -> None:
        self.rows.append({"tick": tick, "progress/kimg": kimg, self.protocol["score.metric"]: value})
        # the first of equal scores stays best: ties go to the shorter training
        if self.best is None or value < self.best["value"]:
            weights = {k: v.detach().to("cpu", copy=True) for k, v in G.state_dict().items()}
            self.best = {"tick": tick, "kimg": kimg, "value": value, "G": weights}

    def state(self) -> dict:
        return {"protocol": self.protocol, "rows": self.rows, "best": self.best}

    @classmethod
    def restore(cls, state: dict | None, protocol: dict[str, str]) -> "Scores":
        """The saved scores when they were made the same way (e.g. the classifier is unchanged), else none."""
        if state is None or state["protocol"] != protocol:
            return cls(protocol)
        return cls(protocol, list(state["rows"]), state["best"])

    def best_module(self, like: nn.Module) -> nn.Module | None:
        """A copy of `like` (on the CPU) holding the best-scored weights; None when nothing was scored."""
        if self.best is None:
            return None
        module = copy.deepcopy(like).cpu()
        module.load_state_dict(self.best["G"])
        return module.eval()
