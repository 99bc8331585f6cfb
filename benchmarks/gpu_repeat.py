"""What repeats bitwise on this device: the same short training twice in one process, for each train.compile and
train.deterministic asked, with the ops most likely to vary on a GPU (DiffAugment's indexing backward, cuDNN
convolutions, the label embedding, bf16 autocast where native, the EMA). Prints whether the generator's weights
and the per-epoch losses came out identical, and the largest weight difference where they did not.

  python benchmarks/gpu_repeat.py [--device auto] [--compile none reduce-overhead] [--deterministic true false]
                                  [--steps 30] [--arch dcgan resnet]

tests/unit/test_step.py::test_on_a_gpu_a_deterministic_run_repeats_bitwise holds the row docs/reproducing.md
claims (eager, deterministic); the other rows say what is not claimed and why.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from loop_speed import RESNET  # noqa: E402

from ganpipe.data import datasets  # noqa: E402
from ganpipe.gan import devices  # noqa: E402
from ganpipe.gan.models import build  # noqa: E402
from ganpipe.gan.train import train  # noqa: E402
from ganpipe.params import config, overlays, overrides  # noqa: E402


def once(cfg: config.Config, split, device: torch.device) -> tuple[list, dict]:
    G, D = build(cfg.model, tuple(split.images.shape[1:]), cfg.train.seed, 10)
    train_cfg = dataclasses.replace(cfg.train, device=device.type)
    result = train(G, D, split.images, train_cfg, cfg.model.z_dim, labels=split.labels)
    return result.history, result.generator.state_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", nargs="+", default=["none", "reduce-overhead"])
    ap.add_argument("--deterministic", nargs="+", default=["true", "false"], choices=["true", "false"])
    ap.add_argument("--arch", nargs="+", default=["dcgan"], choices=["dcgan", "resnet"])
    ap.add_argument("--steps", type=int, default=30, help="steps per epoch (two epochs)")
    args = ap.parse_args()
    device = devices.resolve(args.device)
    batch = 64
    split = datasets.synthetic(batch * args.steps, size=32, channels=3)
    base = overlays.merge(config.load(ROOT / "params.yaml").raw, overlays.read(ROOT / "configs" / "colour.yaml"))
    base = overrides.apply_overrides(base, ["data.image_size=32", "train.epochs=2", f"train.batch_size={batch}",
                                            "train.augment=[translation,cutout]", "train.ema_decay=0.99",
                                            "train.checkpoint_every_s=86400", "train.grid_every_s=86400"])
    print(f"device: {devices.gpu_name(device) or 'CPU'}; torch {torch.__version__}; bf16 "
          f"{devices.bf16_support(device)[1]}; 2 epochs of {args.steps} steps, batch {batch}, DiffAugment, EMA")
    print("| arch | compile | deterministic | G weights identical | losses identical | largest G weight difference |")
    print("|---|---|---|---|---|---|")
    for arch in args.arch:
        for mode in args.compile:
            for det in args.deterministic:
                extra = RESNET if arch == "resnet" else []
                cfg = config.from_dict(overrides.apply_overrides(base, extra + [f"train.compile={mode}",
                                                                                f"train.deterministic={det}"]))
                try:
                    (h1, w1), (h2, w2) = once(cfg, split, device), once(cfg, split, device)
                except Exception as exc:  # a mode this machine cannot run must not end the other rows
                    print(f"| {arch} | {mode} | {det} | failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]} | | |", flush=True)
                    continue
                same = all(torch.equal(a, b) for a, b in zip(w1.values(), w2.values()))
                gap = max((a.double() - b.double()).abs().max().item() for a, b in zip(w1.values(), w2.values()))
                print(f"| {arch} | {mode} | {det} | {'yes' if same else 'no'} | {'yes' if h1 == h2 else 'no'} | "
                      f"{gap:.2e} |", flush=True)


if __name__ == "__main__":
    main()
