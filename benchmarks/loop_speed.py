"""ganpipe's training loop against the pytorch/examples DCGAN loop, side by side in one process on one device.

Same data (colour at each --size, 32 px by default: an image folder with --data, else 4,194 synthetic images), same
batch sizes. Arms (at 64 px each ganpipe arm gains one stage, as WIDE64 says; the peer runs at 32 px only):
  peer            pytorch/examples dcgan/main.py (benchmarks/peer_dcgan.py): per-item transforms, DataLoader
                  with 2 workers, BCE, fp32: the loop a GAN user starts from
  ganpipe-colour  configs/colour.yaml (conditional DCGAN, hinge, spectral norm, EMA)
  ganpipe-resnet  the SNGAN-style ResNet: G widths [256,256,256], D widths [128,128,128,128]
  ganpipe-r3gan-small  configs/r3gan_small.yaml (R3GAN at widths for a CPU)
  ganpipe-r3gan-small-ada  the same with ADA at p = 0.5 (train.augment: [ada]; not in the default arms)
  ganpipe-r3gan-cifar  configs/r3gan_cifar.yaml (the paper's CIFAR-10 preset with its schedules and ADA: for a
                  GPU; not in the default arms)
Each ganpipe arm runs for every --precision, --compile and --deterministic asked. Prints per row: images/s (real
images shown to D per second, after warm-up steps that include any compiling), the ratio to the peer at that
batch size, then from torch.profiler over --profile more steps (benchmarks/profiling.py): the GPU busy share
(kernel time over wall time; CUDA only), kernel launches and host-device syncs per step; and peak device memory.
--top K lists each row's K most expensive kernels after the table.

  python benchmarks/loop_speed.py [--device auto] [--data FOLDER] [--size 32] [--batch 64 256] [--steps 200] [--top 0]
                                  [--precision auto] [--compile none reduce-overhead] [--deterministic true]
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
from profiling import Window  # noqa: E402

from ganpipe.gan import devices  # noqa: E402
from ganpipe.gan.models import build  # noqa: E402
from ganpipe.gan.train import Hooks, train  # noqa: E402
from ganpipe.params import config, overlays, overrides  # noqa: E402

# arm -> (its config in configs/, overrides on top)
ARMS = {"ganpipe-colour": ("colour", []), "ganpipe-r3gan-small": ("r3gan_small", []),
        "ganpipe-r3gan-small-ada": ("r3gan_small", ["train.augment=[ada]", "train.ada_target=null", "train.ada_p=0.5"]),
        "ganpipe-r3gan-cifar": ("r3gan_cifar", [])}
RESNET = ["model.arch=resnet", "model.g_hidden=[256,256,256]", "model.d_hidden=[128,128,128,128]",
          "model.g_activation=relu", "model.d_activation=relu"]
# at 64 px: one more stage per network, at the width the arm's 32 px config ends on (the DCGAN as in
# configs/folder64_unlabelled.yaml)
WIDE64 = {"ganpipe-colour": ["model.g_hidden=[256,128,64,32]", "model.d_hidden=[32,64,128,256]"],
          "ganpipe-resnet": ["model.g_hidden=[256,256,256,256]", "model.d_hidden=[128,128,128,128,128]"],
          "ganpipe-r3gan-small": ["model.g_hidden=[64,64,32,32,32]", "model.d_hidden=[32,32,32,64,64]",
                                  "model.blocks=[1,1,1,1,1]", "model.cardinality=[8,8,4,4,4]"]}
WIDE64["ganpipe-r3gan-small-ada"] = WIDE64["ganpipe-r3gan-small"]


class PerItem(torch.utils.data.Dataset):
    """What torchvision's ImageFolder + ToTensor + Normalize(0.5) does per item, over images in memory."""

    def __init__(self, images: torch.Tensor):
        self.images = images.permute(0, 2, 3, 1).numpy()  # HWC uint8

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = np.asarray(Image.fromarray(self.images[i]), dtype=np.float32) / 255.0
        return (torch.from_numpy(x).permute(2, 0, 1) - 0.5) / 0.5, 0


def load(folder: Path | None, size: int = 32, n: int = 4194) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, 3, size, size] and int64 labels."""
    if folder is None:
        from ganpipe.data import datasets

        s = datasets.synthetic(n, size=size, channels=3)
        return s.images, s.labels
    import torchvision

    tf = torchvision.transforms.Compose([torchvision.transforms.Resize(size), torchvision.transforms.CenterCrop(size),
                                         torchvision.transforms.PILToTensor()])
    ds = torchvision.datasets.ImageFolder(str(folder), transform=tf)
    pairs = [ds[i] for i in range(min(n, len(ds)))]
    return torch.stack([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peer(images: torch.Tensor, batch: int, steps: int, warm: int, device: torch.device, window: Window) -> dict:
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
    window.start()
    for _ in range(window.steps):
        step()
    window.stop()
    return {"images_per_s": speed}


def ours(cfg: config.Config, images, labels, batch: int, steps: int, warm: int, device: torch.device,
         window: Window) -> dict:
    """ganpipe's train() over warm + steps + the profiled window's steps (one epoch of that many batches), timed
    from the end of the warm-up step to the last timed step, with one device sync at each end; the profiled
    steps come after, so the profiler's own cost is not in the timing."""
    train_cfg = dataclasses.replace(cfg.train, batch_size=batch, epochs=1, device=device.type,
                                    checkpoint_every_s=86_400, grid_every_s=86_400)
    n = (warm + steps + window.steps) * batch
    reps = -(-n // len(images))
    imgs, labs = images.repeat(reps, 1, 1, 1)[:n], labels.repeat(reps)[:n]
    G, D = build(cfg.model, tuple(images.shape[1:]), 0, int(labels.max()) + 1)
    marks = {}

    def at(step, *_):
        if step in (warm, warm + steps):
            sync(device)
            marks[step] = time.perf_counter()
        if step == warm + steps:
            window.start()
        if step == warm + steps + window.steps:
            window.stop()

    result = train(G, D, imgs, train_cfg, cfg.model.z_dim, labels=labs, hooks=Hooks(after_step=at))
    speed = steps * batch / (marks[warm + steps] - marks[warm])
    return {"images_per_s": speed, "precision": result.precision.used}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", type=Path, default=None, help="an image folder (default: synthetic 32 px images)")
    ap.add_argument("--size", type=int, nargs="+", default=[32], choices=[32, 64])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warm", type=int, default=20, help="untimed steps first (compiling happens here)")
    ap.add_argument("--profile", type=int, default=10, help="steps profiled after the timed ones")
    ap.add_argument("--top", type=int, default=0, help="list the K kernels taking the most GPU time per row")
    ap.add_argument("--precision", nargs="+", default=["auto"])
    ap.add_argument("--compile", nargs="+", default=["none"])
    ap.add_argument("--deterministic", nargs="+", default=["true"], choices=["true", "false"])
    ap.add_argument("--arms", nargs="+", default=["peer", "ganpipe-colour", "ganpipe-resnet", "ganpipe-r3gan-small"],
                    choices=["peer", "ganpipe-resnet", *ARMS])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = devices.resolve(args.device)
    params = config.load(ROOT / "params.yaml").raw

    def tree_of(arm: str, size: int) -> dict:
        name, extra = ARMS.get(arm, ("colour", RESNET))  # ganpipe-resnet: the colour config with ResNet widths
        tree = overlays.merge(params, overlays.read(ROOT / "configs" / f"{name}.yaml"))
        return overrides.apply_overrides(tree, [f"data.image_size={size}", *extra,
                                                *(WIDE64.get(arm, []) if size == 64 else [])])

    data = {size: load(args.data, size) for size in args.size}
    name = devices.gpu_name(device) or "CPU"
    sizes = " and ".join(f"{s} px" for s in args.size)
    print(f"device: {name}; torch {torch.__version__}; bf16 {devices.bf16_support(device)[1]}; "
          f"threads {args.threads}; {len(data[args.size[0]][0])} images {sizes}; {args.steps} timed steps, "
          f"{args.profile} profiled")
    print("| arm | size | batch | precision | compile | deterministic | images/s | x peer | GPU busy | launches/step | "
          "syncs/step | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    peer_speed: dict[int, float] = {}
    tops: list[str] = []
    # eager rows first, at every size and batch size, then each compiled mode: a run cut short keeps the cheap rows
    for mode, size, batch in ((m, s, b) for m in args.compile for s in args.size for b in args.batch):
        images, labels = data[size]
        rows = []
        if "peer" in args.arms and batch not in peer_speed and size == 32:
            rows.append(("peer", "fp32", "none", "-",
                         lambda w: peer(images, batch, args.steps, args.warm, device, w)))
        for arm in (a for a in args.arms if a.startswith("ganpipe")):
            for precision in args.precision:
                for det in args.deterministic:
                    tree = overrides.apply_overrides(tree_of(arm, size), [
                        f"train.precision={precision}", f"train.compile={mode}", f"train.deterministic={det}"])
                    cfg = config.from_dict(tree)
                    rows.append((arm, precision, mode, det, lambda w, cfg=cfg: ours(
                        cfg, images, labels, batch, args.steps, args.warm, device, w)))
        for arm, precision, mode_, det, fn in rows:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            window = Window(device, args.profile)
            try:
                r = fn(window)
            except Exception as exc:  # one row that cannot run (no Triton, out of memory) must not end the rest
                print(f"| {arm} | {size} | {batch} | {precision} | {mode_} | {det} | failed: "
                      f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} |", flush=True)
                continue
            if arm == "peer":
                peer_speed[batch] = r["images_per_s"]
            ratio = f"{r['images_per_s'] / peer_speed[batch]:.2f}x" if batch in peer_speed and size == 32 else "-"
            peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if device.type == "cuda" else "-"
            used = r.get("precision", precision)
            shown = f"{precision} ({used})" if precision == "auto" else used
            print(f"| {arm} | {size} | {batch} | {shown} | {mode_} | {det} | {r['images_per_s']:,.0f} | {ratio} | "
                  f"{' | '.join(window.cells())} | {peak} |", flush=True)
            if args.top:
                tops += [f"{arm}, {size} px, batch {batch}, compile {mode_}, deterministic {det}:",
                         *window.top_lines(args.top)]
    if tops:
        print("\nKernels taking the most GPU time in the profiled steps:")
        print("\n".join(tops))


if __name__ == "__main__":
    main()
