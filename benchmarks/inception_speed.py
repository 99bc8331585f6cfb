"""Inception-V3 feature speed (the standard FID network, eval/inception.py): images/s end to end (uint8 images
in, 2048-d features out: resize to 299x299, network), against this machine's fp32 limit, and the TorchScript
file as shipped for comparison.

  python benchmarks/inception_speed.py [--device cpu|cuda] [--n 10000] [--batches 8 16 32 64]

On the CPU the network's 5.7 G multiply-adds (11.4 GFLOP) per image are set against the rate of a large fp32
matmul on the same threads (the best dense fp32 work reaches here); the share of that rate is printed. On a GPU, --n images are timed end to
end (10,000 by default) with TF32 off, as the pipeline runs them.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ganpipe.eval import inception  # noqa: E402

GFLOP_PER_IMAGE = 11.4  # 5.7 G multiply-adds at 299x299 (torchvision's count for Inception-V3)


def matmul_peak(device: torch.device) -> float:
    """fp32 GFLOP/s of a 2048^3 matmul (the best this machine does on dense fp32 work)."""
    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    for _ in range(2):
        a @ b
    reps, start = 5, time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * 2048**3 * reps / (time.perf_counter() - start) / 1e9


def rate(fn, images: torch.Tensor, batch: int, reps: int, device: torch.device) -> float:
    with torch.inference_mode():
        fn(images[:batch].to(device))  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(reps):
            fn(images[(i * batch) % len(images):][:batch].to(device))
        if device.type == "cuda":
            torch.cuda.synchronize()
    return reps * batch / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=10_000, help="images timed end to end on a GPU")
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (max(args.n, 64), 3, 32, 32), dtype=torch.uint8, generator=g)
    net = inception.load(device)
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"threads: {torch.get_num_threads()}, torch {torch.__version__}")
    if device.type == "cpu":
        peak = matmul_peak(device)
        print(f"fp32 matmul (2048^3): {peak:.0f} GFLOP/s -> {peak / GFLOP_PER_IMAGE:.1f} images/s at that rate")
        script = inception.load_torchscript()
        shipped = lambda x: script(inception.preprocess(x).contiguous())  # noqa: E731
        for batch in args.batches:
            ours = rate(net, images, batch, max(2, 64 // batch), device)
            print(f"batch {batch:>3}: ganpipe {ours:6.2f} images/s = {ours * GFLOP_PER_IMAGE:.0f} GFLOP/s "
                  f"({ours * GFLOP_PER_IMAGE / peak:.0%} of the matmul's rate)", flush=True)
        base = rate(shipped, images, 16, 4, device)
        print(f"batch  16: TorchScript file as shipped {base:6.2f} images/s")
        return
    for batch in args.batches:
        print(f"batch {batch:>4}: {rate(net, images, batch, max(3, 2048 // batch), device):8.0f} images/s", flush=True)
    start = time.perf_counter()
    feats = inception.features(net, images[: args.n], max(args.batches), "benchmark", progress=False)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"{args.n} images end to end (batch {max(args.batches)}): {seconds:.2f} s, {args.n / seconds:.0f} images/s; "
          f"features {tuple(feats.shape)}")


if __name__ == "__main__":
    main()
