"""One training process among several, seen from the inside: its rank, the process group, and the few collectives
the training loop and the train stage use. A plain single process gets SOLO, whose collectives do nothing, so
the loop has one code path and the single-process path stays bitwise what it was.

torchrun (or `ganpipe`'s own launch of it, launch.py) tells each worker who it is through RANK, LOCAL_RANK and
WORLD_SIZE; the rendezvous it has done also sets MASTER_ADDR/MASTER_PORT, which init_process_group reads.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from ganpipe.console import note
from ganpipe.errors import ConfigError
from ganpipe.gan import devices
from ganpipe.params.config import TrainConfig

LOST_PEERS_EXIT = 75  # a rank that stopped because another died: an effect, not a cause (launch.py)


def in_worker() -> bool:
    """Whether this process was started by torchrun as one worker of a process group."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def backend_for(name: str, device: torch.device) -> str:
    """auto: NCCL between GPUs, gloo between CPUs. NCCL cannot move CPU tensors: refused before any start."""
    if name == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if name == "nccl" and device.type != "cuda":
        raise ConfigError("train.backend: nccl needs CUDA GPUs, but training runs on the CPU (no GPU visible, or "
                          "train.device: cpu); set train.backend: auto or gloo")
    return name


@dataclass(frozen=True)
class Replicas:
    """This process's place in the group; rank 0 is the one that logs and writes files."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: no process group (a plain single process)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def grouped(self) -> bool:
        return self.backend is not None

    def part(self, n: int) -> slice:
        """This rank's equal, disjoint share of n items (n divides by the world size: checked in config)."""
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        """In place: the mean of `t` over all ranks."""
        if self.grouped:
            torch.distributed.all_reduce(t)
            t /= self.world
        return t

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.grouped:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.grouped:
            return obj
        box = [obj if self.main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around `module`: it starts every rank from rank 0's weights and averages the
        gradients of each backward over the ranks; buffers (batch-norm statistics) follow rank 0's."""
        if not self.grouped:
            return module
        ids = [self.local_rank] if next(module.parameters()).device.type == "cuda" else None
        # channels-last convs with one input channel (grey images) get gradients whose strides differ from the
        # weights' only in that size-1 dimension: the same memory layout, so DDP's warning about it is noise
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)  # buffers: rank 0's at each forward


SOLO = Replicas()


@contextlib.contextmanager
def joined(cfg: TrainConfig) -> Iterator[Replicas]:
    """SOLO in a plain process; in a torchrun worker, the process group for the training's lifetime."""
    if not in_worker():
        yield SOLO
        return
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if world != cfg.world_size:
        raise ConfigError(f"torchrun started {world} processes in all, but train.processes x train.nodes is "
                          f"{cfg.world_size}; launch the stage with `dvc repro` (it starts torchrun itself) or "
                          f"give torchrun --nproc-per-node {cfg.processes} --nnodes {cfg.nodes}")
    device = devices.resolve(cfg.device)
    backend = backend_for(cfg.backend, device)
    if device.type == "cuda":
        torch.cuda.set_device(local)  # one GPU per process: "cuda" below means this process's GPU
    # the timeout bounds every collective: a rank that crashed or hangs stops the others within it
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=cfg.timeout_s))
    try:
        yield Replicas(rank, world, local, backend)
    except RuntimeError as exc:  # torch's DistError is one too
        if not peer_lost(exc):
            raise
        # the launcher names the process that died and why; this rank says it stopped for it (no traceback) and
        # exits with a code the launcher does not count as a cause
        note(f"note: rank {rank} stopped: another training process went away mid-collective "
             f"({str(exc).splitlines()[0][:160]})", err=True)
        raise SystemExit(LOST_PEERS_EXIT) from None
    finally:
        torch.distributed.destroy_process_group()


def peer_lost(exc: BaseException) -> bool:
    """A collective's failure when a peer process is gone: gloo's and NCCL's transport errors, timeouts."""
    if isinstance(exc, torch.distributed.DistError):
        return True
    text = str(exc).lower()
    return any(k in text for k in ("gloo", "nccl", "connection reset", "connection closed", "broken pipe"))
