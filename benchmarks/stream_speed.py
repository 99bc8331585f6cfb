"""Training from a split streamed from disk vs held in memory, at 128 px (issue: streamed >= 90% of in-memory).

  python benchmarks/stream_speed.py [--n 20000] [--size 128] [--batch 64] [--steps 48] [--warm 4] [--repeat 3]
                                    [--file /tmp/ganpipe-stream/train.safetensors] [--device cpu]

1. Writes --n random uint8 images of --size px as a prepared training split (once; reused when its size fits).
2. Feed alone, no training: images/s that indexing the memory map on the training thread and data/stream.py's
   Streamed (pages requested ahead, a gathering thread) deliver from a cold page cache. Before every cold arm
   the file's pages are dropped from the OS page cache (posix_fadvise DONTNEED), so the reads come from disk.
3. Training, each arm in its own process, --repeat times interleaved (the median run is reported): images/s
   over --steps steps after --warm, and the process's peak resident memory (VmHWM) and anonymous memory
   (RssAnon, what it holds itself; mapped file pages are the OS's):
     memory    the split loaded into RAM (GANPIPE_STREAM=off, under the budget): each batch an index
     streamed  memory-mapped and streamed (GANPIPE_DATA_BUDGET_MB=0), cold page cache
     mapped    memory-mapped, indexed on the training thread (GANPIPE_STREAM=off), cold page cache: what training
               did before streaming
   The model is a small unconditional DCGAN at 128 px (G [64, 32, 16, 16, 8], D mirrored), so the step is fast
   and the feed has the least time to hide in; bf16 where the machine does it natively (train.precision auto).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ganpipe.data import stream  # noqa: E402
from ganpipe.data.prepared import TRAIN_FILE, save_split, training_split  # noqa: E402
from ganpipe.data.split import Split  # noqa: E402
from ganpipe.params import config, overrides  # noqa: E402

MODEL = ["model.arch=dcgan", "model.g_hidden=[64,32,16,16,8]", "model.d_hidden=[8,16,16,32,64]",
         "model.conditional=false", "train.augment=[]", "train.ema_decay=null", "train.grid_every_s=86400",
         "train.checkpoint_every_s=86400", "train.threads=2"]
ARMS = {"memory": {"GANPIPE_STREAM": "off", "GANPIPE_DATA_BUDGET_MB": "1000000"},
        "streamed": {"GANPIPE_STREAM": "auto", "GANPIPE_DATA_BUDGET_MB": "0"},
        "mapped": {"GANPIPE_STREAM": "off", "GANPIPE_DATA_BUDGET_MB": "0"}}


def make(path: Path, n: int, size: int) -> None:
    want = n * 3 * size * size
    if path.is_file() and want < path.stat().st_size < want + 2**20 + 8 * n + 4096:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    save_split(Split(images, torch.zeros(n, dtype=torch.int64)), path)


def evict(path: Path) -> None:
    """Drop the file's clean pages from the page cache, so the next reads go to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def feed_rate(folder: Path, batch: int, batches: int, streamed: bool) -> float:
    os.environ.update(ARMS["streamed"])
    evict(folder / TRAIN_FILE)
    split, rows = training_split(folder)
    cpu = torch.device("cpu")
    feed = (stream.Streamed(split.images, split.labels, cpu, rows) if streamed
            else stream.Indexed(split.images, split.labels, cpu))
    perm = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    for images, _ in feed.batches(stream.Pass(perm, 0, batches, batch, slice(0, batch))):
        images.sum()  # touch the bytes, as the step's conversion would
    feed.close()
    return batches * batch / (time.perf_counter() - start)


def arm(folder: Path, args: argparse.Namespace) -> dict:
    """One training arm, in this process (its environment set by the caller)."""
    from ganpipe.gan.models import build
    from ganpipe.gan.train import Hooks, train

    if os.environ["GANPIPE_STREAM"] != "off" or os.environ["GANPIPE_DATA_BUDGET_MB"] == "0":
        evict(folder / TRAIN_FILE)
    tree = overrides.apply_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), MODEL + [
        f"data.image_size={args.size}", f"train.batch_size={args.batch}", "train.epochs=null",
        f"train.kimg={args.batch * (args.steps + args.warm) / 1000}", f"train.device={args.device}"])
    cfg = config.from_dict(tree)
    split, rows = training_split(folder)
    G, D = build(cfg.model, tuple(split.images.shape[1:]), 0, 1)
    marks: dict[int, float] = {}

    def at(step, *_):
        if step in (args.warm, args.warm + args.steps):
            if args.device == "cuda":
                torch.cuda.synchronize()
            marks[step] = time.perf_counter()

    result = train(G, D, split.images, cfg.train, cfg.model.z_dim, labels=split.labels, hooks=Hooks(after_step=at),
                   rows=rows)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    gib = {k: int(status[k].split()[0]) / 2**20 for k in ("VmHWM", "RssAnon")}
    return {"images_per_s": args.steps * args.batch / (marks[args.warm + args.steps] - marks[args.warm]),
            "precision": result.precision.used, **gib}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--warm", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each training arm; the median is reported")
    ap.add_argument("--file", type=Path, default=Path("/tmp/ganpipe-stream") / TRAIN_FILE)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--arm", choices=list(ARMS), help=argparse.SUPPRESS)  # a training arm's own process
    args = ap.parse_args()
    folder = args.file.parent
    if args.arm:
        print(json.dumps(arm(folder, args)))
        return
    make(args.file, args.n, args.size)
    gib = args.file.stat().st_size / 2**30
    print(f"split: {args.n} images of {args.size} px, {gib:.2f} GiB at {args.file}; torch {torch.__version__}, "
          f"{os.cpu_count()} cores, device {args.device}")
    batches = min(200, args.n // args.batch)
    for name, streamed in (("indexed on the training thread", False), ("streamed", True)):
        rate = feed_rate(folder, args.batch, batches, streamed)
        print(f"feed alone, cold page cache, {name}: {rate:,.0f} images/s")
    runs: dict[str, list[dict]] = {name: [] for name in ARMS}
    for _ in range(args.repeat):  # the arms interleaved, so a noisy minute hits them alike
        for name, env in ARMS.items():
            cmd = [sys.executable, __file__, "--arm", name] + sys.argv[1:]
            done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"arm {name} failed:\n{done.stderr[-3000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out = {}
    for name, got in runs.items():
        out[name] = r = sorted(got, key=lambda x: x["images_per_s"])[len(got) // 2]  # the median run
        each = ", ".join(f"{x['images_per_s']:.0f}" for x in got)
        print(f"train {name:<9} {r['images_per_s']:8.1f} images/s (median of {each})  peak RSS {r['VmHWM']:.2f} "
              f"GiB  anonymous {r['RssAnon']:.2f} GiB  ({r['precision']})")
    for name in ("streamed", "mapped"):
        print(f"{name} / memory: {out[name]['images_per_s'] / out['memory']['images_per_s']:.1%}")


if __name__ == "__main__":
    main()
