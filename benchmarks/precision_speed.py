"""What bf16 costs or saves on this machine: one training step of the default config (params.yaml) in fp32 and
in bf16 autocast, and what `train.precision: auto` picks here.

Prints the CPU's flags that decide it (avx2, avx512f, avx512_bf16, amx_tile), torch's bf16 verdict, ms per step
in each precision (median of --steps timed steps after warm-up) and the bf16/fp32 ratio. On a CPU with
AVX512-BF16 or AMX bf16 is faster; on an AVX2-only CPU it is emulated and about 20x slower. To see the second
kind on a machine of the first, cap oneDNN at AVX2 (a documented oneDNN setting, which `auto` honours too):

  python benchmarks/precision_speed.py [--steps 20] [--threads 2]
  ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/precision_speed.py
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from ganpipe.data import datasets
from ganpipe.gan import devices
from ganpipe.gan.models import build
from ganpipe.gan.train import Hooks, train
from ganpipe.params import config

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    have = set(line.split(":", 1)[-1].split())
    return " ".join(f"{f}{'+' if f in have else '-'}" for f in FLAGS)


def step_times(cfg: config.Config, precision: str, steps: int, warm: int = 3) -> list[float]:
    """Seconds of each of `steps` training steps (after `warm`), the default model on MNIST-sized data."""
    B = cfg.train.batch_size
    split = datasets.synthetic((warm + steps) * B)
    G, D = build(cfg.model, (1, 28, 28), 0, 10)
    train_cfg = dataclasses.replace(cfg.train, precision=precision, epochs=1, device="cpu",
                                    checkpoint_every_s=86_400, grid_every_s=86_400)
    marks = []
    train(G, D, split.images, train_cfg, cfg.model.z_dim, labels=split.labels,
          hooks=Hooks(after_step=lambda step, *_: marks.append(time.perf_counter())))
    return [b - a for a, b in zip(marks[warm - 1 :], marks[warm:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cfg = config.load(ROOT / "params.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=args.threads))
    cpu = torch.device("cpu")
    print(f"CPU flags: {cpu_flags()}; torch {torch.__version__} kernels: {torch.backends.cpu.get_cpu_capability()}")
    print(f"bf16 here: {devices.bf16_support(cpu)[1]}; train.precision: auto picks "
          f"{devices.resolve_precision('auto', cpu).used}")
    ms = {p: 1000 * statistics.median(step_times(cfg, p, args.steps)) for p in ("fp32", "bf16")}
    print(f"default config, batch {cfg.train.batch_size}, {args.threads} threads: fp32 {ms['fp32']:.1f} ms/step, "
          f"bf16 {ms['bf16']:.1f} ms/step, bf16/fp32 time {ms['bf16'] / ms['fp32']:.2f}x")


if __name__ == "__main__":
    main()
