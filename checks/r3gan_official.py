"""Are ganpipe's R3GAN networks the official ones? Builds both, on the CPU, for the paper's CIFAR-10 (class-
conditional), FFHQ-64 and FFHQ-256 presets: ganpipe's from configs/r3gan_cifar.yaml, r3gan_ffhq64.yaml and r3gan_ffhq256.yaml, the
official code's (github brownvc/R3GAN, a checkout given as the argument) from its R3GAN/Networks.py with its
reference (non-CUDA) operators. Then it moves every official weight off its initial value (where each block
starts as the identity), copies the weights into ganpipe's networks by name and compares parameter counts and
outputs for the same noise, labels and images, for G and for D.

  python checks/r3gan_official.py /path/to/R3GAN-checkout [--batch 4]

Prints one line per network and preset, and exits 1 if any count differs or any output is off by more than
1e-4 relative to the output's scale. The official code stays outside the project: it is imported from the
checkout for this check only.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

# the official code's CIFAR10, FFHQ-64 and FFHQ-256 presets (its train.py), as (preset, ganpipe config, conditional)
PRESETS = {
    "CIFAR10": dict(config="r3gan_cifar", widths=[768] * 4, blocks=[2] * 4, cardinality=[96] * 4, cond=True, size=32),
    "FFHQ-64": dict(config="r3gan_ffhq64", widths=[768] * 4 + [384], blocks=[2] * 5, cardinality=[96] * 4 + [48],
                    cond=False, size=64),
    "FFHQ-256": dict(config="r3gan_ffhq256", widths=[768] * 4 + [384, 192, 96], blocks=[2] * 7,
                     cardinality=[96] * 4 + [48, 24, 12], cond=False, size=256),
}
NUM_CLASSES = 10
# official parameter names -> ganpipe's, applied in order
RENAMES = [(r"^MainLayers\.", "stages."), (r"\.Layers\.", "."), (r"LinearLayer1\.Layer", "expand"),
           (r"LinearLayer2\.Layer", "grouped"), (r"LinearLayer3\.Layer", "project"), (r"NonLinearity1\.Bias", "act1.bias"),
           (r"NonLinearity2\.Bias", "act2.bias"), (r"LinearLayer\.Layer\.", "linear."), (r"LinearLayer\.", "linear."),
           (r"\.Basis\.weight$", ".basis.weight"), (r"\.Basis$", ".basis"), (r"^AggregationLayer\.Layer", "out"),
           (r"^ExtractionLayer\.Layer", "extract"), (r"^EmbeddingLayer", "embed")]


def official_networks(checkout: Path, preset: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    sys.path.insert(0, str(checkout))
    try:  # its torch_utils imports pkg_resources for parse_version, which new setuptools no longer ship
        import pkg_resources  # noqa: F401
    except ImportError:
        import types

        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    import R3GAN.FusedOperators as fused
    import R3GAN.Networks as nets
    import R3GAN.Resamplers as resamplers

    # the reference operators: plain PyTorch, no custom CUDA kernels to build
    nets.BiasedActivation = fused.BiasedActivationReference
    nets.InterpolativeUpsampler = resamplers.InterpolativeUpsamplerReference
    nets.InterpolativeDownsampler = resamplers.InterpolativeDownsamplerReference
    cond = dict(ConditionDimension=NUM_CLASSES) if preset["cond"] else {}
    G = nets.Generator(64, preset["widths"], preset["cardinality"], preset["blocks"], 2,
                       **cond, **(dict(ConditionEmbeddingDimension=64) if preset["cond"] else {}))
    D = nets.Discriminator(preset["widths"][::-1], preset["cardinality"][::-1], preset["blocks"][::-1], 2,
                           **cond, **(dict(ConditionEmbeddingDimension=preset["widths"][0]) if preset["cond"] else {}))
    return G.eval(), D.eval()


def ganpipe_networks(preset: dict) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    from ganpipe.gan.models import build
    from ganpipe.params import config, overlays

    cfg = config.from_dict(overlays.merge(config.load(ROOT / "params.yaml").raw,
                                          overlays.read(ROOT / "configs" / f"{preset['config']}.yaml")))
    G, D = build(cfg.model, (3, preset["size"], preset["size"]), 0, NUM_CLASSES)
    return G.eval(), D.eval(), cfg.model.z_dim


def renamed(name: str) -> str:
    for pattern, replacement in RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def perturb(net: torch.nn.Module) -> None:
    """Move every parameter off its initial value. At initialisation each block's last conv and every bias are
    zero, so the blocks would be identities in both networks and the comparison would not see their insides."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05 / max(p[0].numel(), 1) ** 0.5)


def copy_weights(official: torch.nn.Module, mine: torch.nn.Module) -> list[str]:
    """Load the official parameters into `mine` by translated name; returns the problems (none when equal)."""
    theirs = {renamed(k): v for k, v in official.state_dict().items() if not k.endswith("Resampler.Kernel")}
    ours = mine.state_dict()
    problems = [f"only official: {k}" for k in sorted(set(theirs) - set(ours))]
    problems += [f"only ganpipe: {k}" for k in sorted(set(ours) - set(theirs))]
    problems += [f"shape of {k}: {tuple(theirs[k].shape)} vs {tuple(ours[k].shape)}" for k in sorted(set(theirs) & set(ours))
                 if theirs[k].shape != ours[k].shape]
    if not problems:
        mine.load_state_dict(theirs)
    return problems


def compare(name: str, a: torch.Tensor, b: torch.Tensor) -> tuple[bool, str]:
    err = (a - b).abs().max().item() / max(a.abs().max().item(), 1e-12)
    return err <= 1e-4, f"max |diff| / max |output| = {err:.1e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkout", type=Path, help="a checkout of github brownvc/R3GAN (holding R3GAN/Networks.py)")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    if not (args.checkout / "R3GAN" / "Networks.py").is_file():
        print(f"error: {args.checkout} holds no R3GAN/Networks.py; give a checkout of github brownvc/R3GAN")
        return 2
    torch.manual_seed(0)
    ok = True
    for preset_name, preset in PRESETS.items():
        G_ref, D_ref = official_networks(args.checkout, preset)
        G, D, z_dim = ganpipe_networks(preset)
        labels = torch.arange(args.batch) % NUM_CLASSES
        onehot = F.one_hot(labels, NUM_CLASSES).float() if preset["cond"] else None
        y = labels if preset["cond"] else None
        z = torch.randn(args.batch, z_dim)
        x = torch.randn(args.batch, 3, preset["size"], preset["size"])
        for net, ref, mine, run_ref, run_mine in (
                ("G", G_ref, G, lambda: G_ref(z, onehot), lambda: G(z, y)),
                ("D", D_ref, D, lambda: D_ref(x, onehot), lambda: D(x, y))):
            counts = (sum(p.numel() for p in ref.parameters()), sum(p.numel() for p in mine.parameters()))
            perturb(ref)
            problems = copy_weights(ref, mine)
            if problems:
                ok = False
                print(f"{preset_name} {net}: parameters differ: " + "; ".join(problems[:5]))
                continue
            with torch.no_grad():
                same, detail = compare(net, run_ref(), run_mine())
            ok &= same and counts[0] == counts[1]
            print(f"{preset_name} {net}: parameters official {counts[0]:,} / ganpipe {counts[1]:,}; outputs for "
                  f"the same weights and inputs: {detail} -> {'EQUAL' if same and counts[0] == counts[1] else 'DIFFERENT'}")
        sys.path.remove(str(args.checkout))
    print("equal to the official networks" if ok else "NOT equal to the official networks")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
