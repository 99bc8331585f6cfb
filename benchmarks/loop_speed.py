"""ganpipe's training loop against the pytorch/examples DCGAN loop, side by side in one process on one device.

Same data (32 px colour: an image folder with --data, else 4,194 synthetic images), same batch sizes. Arms:
  peer            pytorch/examples dcgan/main.py (benchmarks/peer_dcgan.py): per-item transforms, DataLoader
                  with 2 workers, BCE, fp32: the loop a GAN user starts from
  ganpipe-colour  configs/colour.yaml (conditional DCGAN, hinge, spectral norm, EMA)
  ganpipe-resnet  the SNGAN-style ResNet: G widths [256,256,256], D widths [128,128,128,128]
Each ganpipe arm runs for every --precision and --compile asked. Prints per row: images/s (real images shown to
D per second, after warm-up steps that include any compiling), the ratio to the peer at that batch size, the
GPU busy share (kernel time over wall time in a profiled window; CUDA only) and peak device memory.

  python benchmarks/loop_speed.py [--device auto] [--data FOLDER] [--batch 64 256] [--steps 200]
                                  [--precision auto] [--compile none reduce-overhead] [--threads 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import peer_dcgan  # noqa: E402

from ganpipe.gan import devices  # noqa: E402
from ganpipe.gan.models import build  # noqa: E402
from ganpipe.gan.train import Hooks, train  # noqa: E402
from ganpipe.params import config, overlays, overrides  # noqa: E402

RESNET = ["model.arch=resnet", "model.g_hidden=[256,256,256]", "model.d_hidden=[128,128,128,128]",
          "model.g_activation=relu", "model.d_activation=relu"]


class PerItem(torch.utils.data.Dataset):
    """What torchvision's ImageFolder + ToTensor + Normalize(0.5) does per item, over images in memory."""

    def __init__(self, images: torch.Tensor):
        self.images = images.permute(0, 2, 3, 1).numpy()  # HWC uint8

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = np.asarray(Image.fromarray(self.images[i]), dtype=np.float32) / 255.0
        return (torch.from_numpy(x).permute(2, 0, 1) - 0.5) / 0.5, 0


def load(folder: Path | None, n: int = 4194) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, 3, 32, 32] and int64 labels."""
    if folder is None:
        from ganpipe.data import datasets

        s = datasets.synthetic(n, size=32, channels=3)
        return s.images, s.labels
    import torchvision

    tf = torchvision.transforms.Compose([torchvision.transforms.Resize(32), torchvision.transforms.CenterCrop(32),
                                         torchvision.transforms.PILToTensor()])
    ds = torchvision.datasets.ImageFolder(str(folder), transform=tf)
    pairs = [ds[i] for i in range(min(n, len(ds)))]
    return torch.stack([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def busy_share(device: torch.device, step, n: int = 10) -> float | None:
    """Kernel time over wall time of n calls of `step` under torch.profiler (None on a CPU)."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(n):
            step()
        sync(device)
        wall = time.perf_counter() - start
    kernels = sum(getattr(e, "self_device_time_total", 0) for e in prof.key_averages()
                  if e.device_type == torch.autograd.DeviceType.CUDA)
    return kernels / 1e6 / wall


def peer(images: torch.Tensor, batch: int, steps: int, warm: int, device: torch.device) -> dict:
    loader = torch.utils.data.DataLoader(PerItem(images), batch_size=batch, shuffle=True, num_workers=2,
                                         persistent_workers=True, drop_last=True)
    G, D = peer_dcgan.generator().to(device), peer_dcgan.discriminator().to(device)
    crit = torch.nn.BCELoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    batches = iter(())

    def step() -> None:
        nonlocal batches
        real = next(batches, None)
        if real is None:
            batches = iter(loader)
            real = next(batches)
        real = real[0].to(device)
        b = real.size(0)
        D.zero_grad()
        crit(D(real).view(-1), torch.full((b,), 1.0, device=device)).backward()
        fake = G(torch.randn(b, 100, 1, 1, device=device))
        crit(D(fake.detach()).view(-1), torch.full((b,), 0.0, device=device)).backward()
        opt_d.step()
        G.zero_grad()
        crit(D(fake).view(-1), torch.full((b,), 1.0, device=device)).backward()
        opt_g.step()

    for _ in range(warm):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    speed = steps * batch / (time.perf_counter() - start)
    return {"images_per_s": speed, "busy": busy_share(device, step)}


def ours(cfg: config.Config, images, labels, batch: int, steps: int, warm: int, device: torch.device) -> dict:
    """ganpipe's train() over exactly warm + steps steps (one epoch of that many batches), timed from the end
    of the warm-up step to the last step, with one device sync at each end."""
    train_cfg = dataclasses.replace(cfg.train, batch_size=batch, epochs=1, device=device.type,
                                    checkpoint_every_s=86_400, grid_every_s=86_400)
    n = (warm + steps) * batch
    reps = -(-n // len(images))
    imgs, labs = images.repeat(reps, 1, 1, 1)[:n], labels.repeat(reps)[:n]
    G, D = build(cfg.model, tuple(images.shape[1:]), 0, int(labels.max()) + 1)
    marks = {}

    def at(step, *_):
        if step in (warm, warm + steps):
            sync(device)
            marks[step] = time.perf_counter()

    result = train(G, D, imgs, train_cfg, cfg.model.z_dim, labels=labs, hooks=Hooks(after_step=at))
    speed = steps * batch / (marks[warm + steps] - marks[warm])
    return {"images_per_s": speed, "precision": result.precision.used, "busy": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", type=Path, default=None, help="an image folder (default: synthetic 32 px images)")
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warm", type=int, default=20, help="untimed steps first (compiling happens here)")
    ap.add_argument("--precision", nargs="+", default=["auto"])
    ap.add_argument("--compile", nargs="+", default=["none"])
    ap.add_argument("--arms", nargs="+", default=["peer", "ganpipe-colour", "ganpipe-resnet"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = devices.resolve(args.device)
    base = overlays.merge(config.load(ROOT / "params.yaml").raw, overlays.read(ROOT / "configs" / "colour.yaml"))
    base = overrides.apply_overrides(base, ["data.image_size=32"])
    images, labels = load(args.data)
    name = devices.gpu_name(device) or "CPU"
    print(f"device: {name}; torch {torch.__version__}; bf16 {devices.bf16_support(device)[1]}; "
          f"threads {args.threads}; {len(images)} images 32 px; {args.steps} timed steps")
    print("| arm | batch | precision | compile | images/s | x peer | GPU busy | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in args.batch:
        rows, peer_speed = [], None
        if "peer" in args.arms:
            rows.append(("peer", "fp32", "none", lambda: peer(images, batch, args.steps, args.warm, device)))
        for arm in (a for a in args.arms if a.startswith("ganpipe")):
            extra = RESNET if arm == "ganpipe-resnet" else []
            for precision in args.precision:
                for mode in args.compile:
                    tree = overrides.apply_overrides(base, extra + [f"train.precision={precision}",
                                                                    f"train.compile={mode}"])
                    cfg = config.from_dict(tree)
                    rows.append((arm, precision, mode,
                                 lambda cfg=cfg: ours(cfg, images, labels, batch, args.steps, args.warm, device)))
        for arm, precision, mode, fn in rows:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            r = fn()
            peer_speed = r["images_per_s"] if arm == "peer" else peer_speed
            ratio = f"{r['images_per_s'] / peer_speed:.2f}x" if peer_speed else "-"
            busy = f"{r['busy']:.0%}" if r["busy"] is not None else "-"
            peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if device.type == "cuda" else "-"
            used = r.get("precision", precision)
            shown = f"{precision} ({used})" if precision == "auto" else used
            print(f"| {arm} | {batch} | {shown} | {mode} | {r['images_per_s']:,.0f} | {ratio} | {busy} | {peak} |",
                  flush=True)


if __name__ == "__main__":
    main()
