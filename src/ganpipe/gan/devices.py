"""Where training runs and in which precision: device resolution, the bf16 decision, autocast, and the checks
that need hardware.

Measured on CPUs (benchmarks/precision_speed.py, docs/speed.md): with AVX512-BF16 (no AMX) a default training
step takes 0.66-0.76x its fp32 time in bf16; with AVX2 only (many laptops and older servers) PyTorch emulates
bf16 and the step takes about 20-26x its fp32 time. Expected, not measured with the current loop: bf16 tensor
cores (a CUDA GPU of compute capability 8.0 and later) multiply faster in bf16. The one GPU measurement so far
(an H200, an older loop, torch 2.11) had bf16 autocast slower than fp32 for the small default DCGAN, whose
step was bound by kernel launches rather than arithmetic. `train.precision: auto` picks bf16 wherever the
hardware has native bf16, GPUs included, until a GPU measurement of the current loop decides otherwise;
`resolve_precision` is the one place that decides it, from what torch reports about the hardware (never from
a CPU model name).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from ganpipe.errors import ConfigError

# oneDNN's ISA cap (a documented oneDNN setting): at or above AVX512_CORE_BF16 its kernels may use native bf16.
# A lower cap (for example AVX2) makes a bf16-capable CPU emulate bf16 like an AVX2 one.
_BF16_ISAS = {"ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
              "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
              "AVX10_2_512_AMX_2"}
# measured: one training step of the default DCGAN in bf16 autocast vs fp32 on a CPU that emulates bf16
EMULATED_SLOWDOWN = "about 20x"


def resolve(name: str) -> torch.device:
    """'auto' -> cuda when a GPU is visible, else cpu; 'cuda' without a GPU is a user error, not a silent fallback."""
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise ConfigError("train.device is cuda but no CUDA GPU is visible to torch; set train.device: auto or cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and available) else "cpu")


def bf16_support(device: torch.device) -> tuple[bool, str]:
    """(whether `device` does bf16 natively, the fact in words) as torch reports it."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            return True, f"native (bf16 tensor cores, sm_{major}{minor})"
        return False, f"emulated (no bf16 tensor cores on sm_{major}{minor}; they start at sm_80)"
    flags = [name for name, has in (("AVX512-BF16", torch.cpu._is_avx512_bf16_supported()),
                                    ("AMX", torch.cpu._is_amx_tile_supported())) if has]
    if not flags:
        return False, "emulated (this CPU has neither AVX512-BF16 nor AMX)"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").strip().upper()
    if cap not in _BF16_ISAS:
        return False, f"emulated (the CPU has {' and '.join(flags)}, but ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN below it)"
    return True, f"native ({' and '.join(flags)})"


@dataclass(frozen=True)
class Precision:
    """The precision a training runs in, and why."""

    requested: str  # train.precision: auto | fp32 | bf16
    used: str  # fp32 | bf16
    bf16: str  # the machine fact: "native (...)" or "emulated (...)"
    device_type: str  # cpu | cuda

    @property
    def summary(self) -> str:
        """One line for the stage output."""
        how = "picked by train.precision: auto" if self.requested == "auto" else "as train.precision asks"
        return f"precision: {self.used} ({how}; bf16 on this {self.device_kind} is {self.bf16})"

    @property
    def device_kind(self) -> str:
        return "GPU" if self.device_type == "cuda" else "CPU"

    @property
    def warning(self) -> str | None:
        """Said when an explicit bf16 will run emulated: it still runs, much slower."""
        if self.used != "bf16" or self.bf16.startswith("native"):
            return None
        return (f"note: train.precision: bf16 is emulated on this {self.device_kind} ({self.bf16.split('(', 1)[1][:-1]}): "
                f"training runs {EMULATED_SLOWDOWN} slower than in fp32 (benchmarks/precision_speed.py); set "
                f"train.precision: auto (bf16 only where it is native) or fp32")


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """The one place that decides the training precision: auto = bf16 where `device` does it natively."""
    native, fact = bf16_support(device)
    used = ("bf16" if native else "fp32") if requested == "auto" else requested
    return Precision(requested=requested, used=used, bf16=fact, device_type=device.type)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 mixed precision (`precision` is a resolved one: fp32 | bf16). bf16 has fp32's range, so unlike
    fp16 it needs no loss scaling, which keeps the gradient penalties (double backward) simple."""
    assert precision in ("fp32", "bf16"), precision  # auto is resolved by resolve_precision first
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_deterministic(device: torch.device, on: bool) -> None:
    """train.deterministic on a GPU. cuDNN's fastest convolution backward kernels and the scatter-add behind
    DiffAugment's indexing backward add with atomics, in an order that varies from run to run, so the bytes of a
    GPU training drift apart after the first step. Deterministic mode makes PyTorch pick the deterministic kernel
    for each op (warning, not failing, where an op has none); cuBLAS needs its fixed workspace for it. A CPU
    is left alone: its kernels already repeat for a fixed thread count, and the mode would only add work there.
    The mode is global to the process, as torch keeps it; the last training's setting stands."""
    if device.type != "cuda":
        return
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts: set before any matmul
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # NaN-filling torch.empty: kernels for nothing
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False  # autotuning may pick another algorithm on the next run


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
