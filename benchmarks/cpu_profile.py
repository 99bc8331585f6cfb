"""Where a default training step's time goes on this CPU, and how close it runs to what the machine can do.

torch.profiler over --steps training steps of the default config (params.yaml: the DCGAN, batch 64, MNIST-sized
images), after --warm untimed ones, in fp32 and in bf16 autocast (bf16 only where it is native, unless asked).
The profiler's self time of every op is summed per kernel family (convolution forward, convolution backward,
matmul, batch norm, optimiser, other ops); what the step's wall time holds beyond all ops is the framework
(Python, autograd's engine, dispatch). FLOPs come from torch's FlopCounterMode over one step (every
convolution and matmul that runs, forward and backward); each family's FLOP/s is set against this machine's
measured rate for a 2048^3 matmul in the same precision, the most its cores do on dense arithmetic; the step's
floor is all its FLOPs at that rate.

  python benchmarks/cpu_profile.py [--steps 20] [--warm 3] [--threads 2] [--precision fp32 bf16]
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from arch_speed import matmul_peak  # noqa: E402
from precision_speed import cpu_flags  # noqa: E402

from ganpipe.data import datasets  # noqa: E402
from ganpipe.gan import devices  # noqa: E402
from ganpipe.gan.models import build  # noqa: E402
from ganpipe.gan.train import Hooks, train  # noqa: E402
from ganpipe.params import config  # noqa: E402

# (family, pattern on the op's name), first match wins; autograd's wrappers (ConvolutionBackward0) and the aten
# ops under them (aten::convolution_backward, aten::mkldnn_convolution...) land in the same family
FAMILIES = (
    ("conv backward", re.compile(r"conv.*backward", re.I)),
    ("conv forward", re.compile(r"conv", re.I)),
    ("matmul", re.compile(r"(^|::)_?(mm|addmm|bmm|mv|addmv|matmul|linear|dot|vdot)_?$|^(Mm|Addmm|Mv|Addmv|Dot)Backward",
                          re.I)),
    ("batch norm", re.compile(r"batch_norm|batchnorm", re.I)),
    ("activations", re.compile(r"relu|threshold|tanh|sigmoid|softplus|gelu|silu", re.I)),
    ("optimiser", re.compile(r"adam|_foreach_|lerp", re.I)),
    ("copies and indexing", re.compile(r"copy|index|gather|scatter|cat$|clone|embedding|contiguous|_to_", re.I)),
    ("other elementwise", re.compile(r"(^|::)(mul|add|sub|div|neg|clamp|clamp_min|pow|sqrt|rsqrt|exp|log|abs|where|"
                                     r"fill|zero|sum|mean|norm|linalg_vector_norm)_?$|^(Mul|Add|Sub|Div|Neg|Sum|Mean)"
                                     r"Backward", re.I)),
)
OTHER, FRAMEWORK = "other ops", "framework (outside ops)"
# FlopCounterMode's op names -> the family they belong to (it counts only these)
FLOP_FAMILIES = {"convolution": "conv forward", "convolution_backward": "conv backward", "mm": "matmul",
                 "addmm": "matmul", "bmm": "matmul", "baddbmm": "matmul", "mv": "matmul"}


def family(op: str) -> str:
    """The kernel family of a profiler event's name."""
    return next((name for name, pattern in FAMILIES if pattern.search(op)), OTHER)


def shares(self_us: dict[str, float], wall_us: float) -> dict[str, float]:
    """Each family's µs of a step from per-op self times, plus the framework's: wall time the ops do not hold."""
    out: dict[str, float] = {}
    for op, us in self_us.items():
        out[family(op)] = out.get(family(op), 0.0) + us
    out[FRAMEWORK] = max(wall_us - sum(out.values()), 0.0)
    return out


def profile_steps(cfg: config.Config, precision: str, steps: int, warm: int) -> tuple[float, dict[str, float]]:
    """(median seconds per step over `steps` plain steps after `warm`, µs per step of each family over `steps`
    more under the profiler, scaled to the plain step so that the profiler's own overhead is left out)."""
    B = cfg.train.batch_size
    data = datasets.synthetic((warm + 2 * steps) * B)
    G, D = build(cfg.model, (1, 28, 28), 0, 10)
    train_cfg = dataclasses.replace(cfg.train, precision=precision, epochs=1, device="cpu",
                                    checkpoint_every_s=86_400, grid_every_s=86_400)
    prof = profile(activities=[ProfilerActivity.CPU])
    marks: list[float] = []
    profiled = warm + steps

    def after_step(step: int, *_: object) -> None:
        if step == profiled + steps:
            marks.append(time.perf_counter())
            prof.stop()
            return
        if step == profiled:
            marks.append(time.perf_counter())
            prof.start()
        marks.append(time.perf_counter())

    train(G, D, data.images, train_cfg, cfg.model.z_dim, labels=data.labels, hooks=Hooks(after_step=after_step))
    plain = [b - a for a, b in zip(marks[warm - 1:profiled - 1], marks[warm:profiled])]
    under_profiler_us = 1e6 * (marks[-1] - marks[profiled]) / steps
    # self time counts each microsecond once, in the op that spent it (nested ops included)
    self_us = {e.key: e.self_cpu_time_total / steps for e in prof.key_averages()}
    step_s = statistics.median(plain)
    scale = 1e6 * step_s / under_profiler_us
    return step_s, {k: v * scale for k, v in shares(self_us, under_profiler_us).items()}


def flops_per_family(cfg: config.Config, precision: str) -> dict[str, float]:
    """FLOPs of one training step per family (FlopCounterMode counts convolutions and matmuls)."""
    B = cfg.train.batch_size
    data = datasets.synthetic(B)
    G, D = build(cfg.model, (1, 28, 28), 0, 10)
    one = dataclasses.replace(cfg.train, precision=precision, epochs=1, device="cpu", ema_decay=None,
                              checkpoint_every_s=86_400, grid_every_s=86_400)
    with FlopCounterMode(display=False) as counter:
        train(G, D, data.images, one, cfg.model.z_dim, labels=data.labels)
    out: dict[str, float] = {}
    for op, flops in counter.get_flop_counts()["Global"].items():
        name = FLOP_FAMILIES.get(str(op).split(".")[1] if "." in str(op) else str(op), OTHER)
        out[name] = out.get(name, 0.0) + flops
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", nargs="+", choices=["fp32", "bf16"],
                    help="default: fp32, and bf16 where this CPU does it natively")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config.load(ROOT / "params.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=args.threads))
    native = devices.bf16_support(torch.device("cpu"))[0]
    precisions = args.precision or (["fp32", "bf16"] if native else ["fp32"])
    peak = {"fp32": matmul_peak(torch.float32, "cpu"), "bf16": matmul_peak(torch.bfloat16, "cpu")}
    print(f"CPU flags: {cpu_flags()}; torch {torch.__version__}; {args.threads} threads; bf16 "
          f"{'native' if native else 'emulated'}")
    print(f"matmul 2048^3: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s")
    for precision in precisions:
        step_s, us = profile_steps(cfg, precision, args.steps, args.warm)
        flops = flops_per_family(cfg, precision)
        total_us = sum(us.values())
        rate = sum(flops.values()) / step_s
        print(f"\ndefault config ({cfg.model.arch}, batch {cfg.train.batch_size}), {precision}: "
              f"{1000 * step_s:.1f} ms/step (median of {args.steps}), {sum(flops.values()) / 1e9:.2f} GFLOP/step, "
              f"{rate / 1e9:.1f} GFLOP/s = {rate / peak[precision]:.0%} of the {precision} matmul rate")
        floor = sum(flops.values()) / peak[precision]  # every FLOP at the dense matmul rate, nothing else
        print(f"  floor: its FLOPs at the {precision} matmul rate take {1000 * floor:.1f} ms; the step is "
              f"{step_s / floor:.2f}x that")
        print(f"  {'family':<26}{'share':>7}{'ms/step':>9}{'GFLOP/step':>12}{'GFLOP/s':>9}{'of matmul':>11}")
        for name in sorted(us, key=lambda k: -us[k]):
            f = flops.get(name, 0.0)
            gflops = f / (us[name] / 1e6) / 1e9 if f and us[name] else None
            rate_cells = (f"{gflops:>9.1f}{gflops * 1e9 / peak[precision]:>10.0%}" if gflops else f"{'-':>9}{'-':>11}")
            print(f"  {name:<26}{us[name] / total_us:>7.0%}{us[name] / 1000:>9.1f}"
                  f"{(f'{f / 1e9:.3f}' if f else '-'):>12}{rate_cells}")


if __name__ == "__main__":
    main()
