"""train.compile: the step's forward passes through torch.compile, which fuses the many small kernels of a
small GAN (batch norm, activations, spectral norm's power iteration) into few, and with `reduce-overhead`
replays them as CUDA graphs, so a GPU stops waiting for the host to launch each one.

On a CPU it is allowed but rarely pays: on 2 cores the colour DCGAN trained slower compiled than eager after
tens of seconds of compiling (`python benchmarks/loop_speed.py --arms ganpipe-colour --compile none default`),
hence the default `none`.
"""
from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from ganpipe.errors import ConfigError


def check(mode: str, device: torch.device, world_size: int) -> None:
    """Refuse, before any work, a compile mode this machine or placement cannot run."""
    if mode == "none":
        return
    key = f"train.compile: {mode}"
    if not torch._dynamo.is_dynamo_supported():
        raise ConfigError(f"{key}: torch.compile does not support this Python or platform; set train.compile: none")
    if mode == "reduce-overhead" and device.type != "cuda":
        raise ConfigError(f"{key} records CUDA graphs and needs a CUDA GPU; on a CPU use train.compile: default "
                          f"(or none, usually as fast there)")
    if world_size > 1:
        raise ConfigError(f"{key} is not supported with several processes yet (DistributedDataParallel's "
                          f"compiled buckets are untested here); set train.compile: none or train.processes: 1")
    if device.type == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c):
        raise ConfigError(f"{key} on a CPU needs a C++ compiler for TorchInductor's kernels and none was found "
                          f"(g++, c++, clang++ or $CXX); install one (e.g. apt-get install g++) or set "
                          f"train.compile: none")
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise ConfigError(f"{key} on a GPU needs Triton, which this torch install lacks; install the triton "
                              f"that matches torch {torch.__version__} or set train.compile: none")


def wrap(module: nn.Module, mode: str) -> nn.Module:
    """`module` compiled in `mode` (sharing its parameters and buffers), or itself when mode is none."""
    if mode == "none":
        return module
    return torch.compile(module, mode=mode)
