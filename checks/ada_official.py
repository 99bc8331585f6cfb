"""Is ganpipe's ADA pipeline the official one? Runs ganpipe's (gan/augment/ada.py) and StyleGAN2-ADA's
AugmentPipe (github NVlabs/stylegan2-ada-pytorch, a checkout given as the argument; its reference, non-CUDA
operators) on the same images with the same random numbers, and compares the outputs and the gradients that
flow back to the images, for each augmentation alone and for the full 'bgc' set and R3GAN's set with cutout,
on colour and grey images.

  python checks/ada_official.py /path/to/stylegan2-ada-pytorch-checkout [--batch 8] [--size 32]

Both draw from the global random stream in the same order (ganpipe's from an explicit generator seeded alike).
At p = 1 every image is transformed by both. Prints one line per case and exits 1 if any output or gradient
is off by more than 1e-4 relative to its scale. The official code stays outside the project.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
GEOMETRIC = ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"]
COLOUR = ["brightness", "contrast", "lumaflip", "hue", "saturation"]


def official_pipe(checkout: Path, **multipliers: float) -> torch.nn.Module:
    sys.path.insert(0, str(checkout))
    try:  # its torch_utils imports pkg_resources, which new setuptools no longer ship
        import pkg_resources  # noqa: F401
    except ImportError:
        import types

        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    from training.augment import AugmentPipe

    return AugmentPipe(**multipliers)


def compare(checkout: Path, name: str, multipliers: dict, channels: int, batch: int, size: int) -> float:
    from ganpipe.gan.augment import ada

    official = official_pipe(checkout, **multipliers)
    ada.PIPES["_check"] = ada.Multipliers(**multipliers)
    x0 = torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    worst = 0.0
    outs = []
    for run in ("official", "ganpipe"):
        x = x0.clone().requires_grad_(True)
        torch.manual_seed(123)
        y = official(x) if run == "official" else ada.Ada("_check", torch.Generator().manual_seed(123))(x, torch.tensor(1.0))
        w = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
        (y * w).sum().backward()
        outs.append((y.detach(), x.grad.detach()))
    for a, b in zip(outs[0], outs[1]):
        worst = max(worst, float((a - b).abs().max() / a.abs().max().clamp(min=1e-12)))
    print(f"{name:<12} {'RGB' if channels == 3 else 'grey':<5} output and gradient max rel diff {worst:.1e}")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkout", type=Path)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    cases = {op: {op: 1} for op in GEOMETRIC + COLOUR + ["cutout"]}
    cases["bgc"] = {op: 1 for op in GEOMETRIC + COLOUR}
    cases["bgcc"] = {**{op: 1 for op in GEOMETRIC}, **{op: 0.5 for op in COLOUR}, "cutout": 1}
    worst = 0.0
    for name, mult in cases.items():
        for channels in (3, 1):
            if channels == 1 and set(mult) <= {"hue", "saturation"}:
                continue  # neither acts on grey images
            worst = max(worst, compare(args.checkout, name, mult, channels, args.batch, args.size))
    ok = worst <= 1e-4
    print(f"{'EQUAL' if ok else 'DIFFERENT'}: worst relative difference {worst:.1e} (limit 1e-4)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
