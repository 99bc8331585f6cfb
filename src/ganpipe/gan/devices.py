"""Where training runs and in which precision: device resolution, autocast, and the checks that need hardware."""
from __future__ import annotations

import contextlib

import torch

from ganpipe.errors import ConfigError


def resolve(name: str) -> torch.device:
    """'auto' -> cuda when a GPU is visible, else cpu; 'cuda' without a GPU is a user error, not a silent fallback."""
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise ConfigError("train.device is cuda but no CUDA GPU is visible to torch; set train.device: auto or cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and available) else "cpu")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 mixed precision: AMX on this CPU, tensor cores on a GPU. bf16 has fp32's range, so unlike fp16 it
    needs no loss scaling, which keeps the gradient penalties (double backward) simple."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def gpu_name(device: torch.device) -> str | None:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


def holds(device: torch.device, nbytes: int) -> bool:
    """Whether a dataset of `nbytes` should live on `device` for the whole training: always on the CPU (where
    it already is, loaded or memory-mapped); on a GPU when it takes at most a quarter of the GPU's memory,
    else it stays on the host and each batch is copied over."""
    if device.type != "cuda":
        return True
    return nbytes <= torch.cuda.get_device_properties(device).total_memory // 4
