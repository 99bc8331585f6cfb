"""Large image folders: decoding speed and peak memory of `prepare`, and the memory training holds with the
prepared data loaded vs memory-mapped.

  python benchmarks/folder_scale.py [--n 100000] [--size 64] [--folder /tmp/ganpipe-folder-100k] [--no-train]

1. Generates --n PNG files of --size px in 10 class folders (once; reused when the folder is complete).
2. Decoding: images/s of data/folder.py's parallel decode with 1 worker process and with every core.
3. The real `prepare` stage in a subprocess: wall time, and its peak memory against the size of the final uint8
   array: the stage process's own peak (VmHWM), and the peak over time of the proportional set size (PSS, shared
   pages split between the processes sharing them) summed over the stage and its decoding workers, sampled
   every 0.1 s. Page-cache pages of the files it writes are the OS's, not the stage's, and are not counted.
4. One training epoch (a small DCGAN, so it ends in minutes) in a subprocess, with the prepared split loaded
   and with it memory-mapped (GANPIPE_DATA_BUDGET_MB=0): anonymous memory (RssAnon: what the process holds;
   mapped file pages are the OS's cache and can be dropped) and peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _make(task: tuple[str, int, int]) -> None:
    from PIL import Image

    path, i, size = task
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * xx + i % 10), np.cos(4 * yy * (1 + i % 7)), xx * yy], axis=-1)
    img = (127 * (base + 1) + rng.normal(0, 8, base.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, compress_level=1)


def make_folder(folder: Path, n: int, size: int) -> None:
    files = [folder / f"class_{i % 10}" / f"{i:06d}.png" for i in range(n)]
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == n:
        return
    for k in range(10):
        (folder / f"class_{k}").mkdir(parents=True, exist_ok=True)
    with Pool() as pool:
        pool.map(_make, [(str(f), i, size) for i, f in enumerate(files)], chunksize=256)


def decode_speed(folder: Path, size: int) -> dict[str, float]:
    from ganpipe.data import folder as imgfolder

    listing = imgfolder.list_folder(folder)
    out = {}
    for procs in (1, imgfolder.workers()):
        sub = imgfolder.Listing(listing.files[:20000], listing.labels[:20000], listing.classes)
        original = imgfolder.workers
        imgfolder.workers = lambda procs=procs: procs
        try:
            start = time.perf_counter()
            imgfolder.decode(sub, size, 3)
            out[f"decode_images_per_s_{procs}_proc"] = len(sub.files) / (time.perf_counter() - start)
        finally:
            imgfolder.workers = original
    return out


def _tree(pid: int) -> list[int]:
    """pid and every process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return out


def _pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(("Pss_Anon", "Pss_Shmem")))


def peak_tree_pss(proc: subprocess.Popen, every: float = 0.1) -> float:
    """The largest sum over time of the anonymous PSS (kB) of `proc` and its children, until it ends; in GiB."""
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(_pss(p) for p in _tree(proc.pid)))
        time.sleep(every)
    return peak / 2**20


def memory_of(pid_status: str) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in pid_status.splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 2**20 for k in ("VmHWM", "RssAnon", "RssFile") if k in fields}  # GiB


PREPARE = """
import sys, runpy
sys.argv = ["prepare.py"]
try:
    runpy.run_path(sys.argv_stage, run_name="__main__")
except SystemExit as e:
    print(open("/proc/self/status").read(), file=open("status.txt", "w"))
    raise
"""

TRAIN = """
import dataclasses, json, sys
from ganpipe.params import config
from ganpipe.data.prepared import read_prepared
from ganpipe.gan.models import build
from ganpipe.gan.train import train
cfg = config.load("params.yaml")
info, split, _ = read_prepared("data/prepared")
G, D = build(cfg.model, tuple(info["image_shape"]), 0, info["num_classes"])
result = train(G, D, split.images, cfg.train, cfg.model.z_dim, labels=split.labels)
open("status.txt", "w").write(open("/proc/self/status").read())
print(json.dumps({"images_seen": result.images_seen}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--folder", type=Path, default=Path("/tmp/ganpipe-folder-100k"))
    ap.add_argument("--no-train", action="store_true", help="measure decoding and prepare only")
    args = ap.parse_args()
    start = time.perf_counter()
    make_folder(args.folder, args.n, args.size)
    print(f"folder: {args.n:,} PNG files of {args.size}x{args.size} ({time.perf_counter() - start:.0f} s to make)")
    print(json.dumps(decode_speed(args.folder, args.size)))
    array_gib = args.n * 3 * args.size**2 / 2**30
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["data"].update(dataset="imagefolder", root=str(args.folder), image_size=args.size, channels=3)
        params["model"].update(g_hidden=[32, 16, 16, 8], d_hidden=[8, 16, 16, 32], conditional=False)
        params["train"].update(epochs=1, batch_size=256, ema_decay=None, precision="auto")
        params["tracking"]["enabled"] = False
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        script = work / "prepare_run.py"
        script.write_text(PREPARE.replace("sys.argv_stage", repr(str(ROOT / "stages" / "prepare.py"))))
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(script)], cwd=work, stdout=subprocess.DEVNULL)
        tree = peak_tree_pss(proc)
        if proc.wait():
            raise SystemExit(f"prepare failed ({proc.returncode})")
        took = time.perf_counter() - start
        mem = memory_of((work / "status.txt").read_text())
        rate = args.n / took
        print(f"prepare stage: {took:.0f} s ({rate:,.0f} images/s end to end, {rate / os.cpu_count():,.0f} per core); "
              f"final uint8 array {array_gib:.2f} GiB; peak memory: the stage process {mem['VmHWM']:.2f} GiB (VmHWM), "
              f"the stage and its workers {tree:.2f} GiB (anonymous PSS summed)")
        if args.no_train:
            return
        (work / "train_run.py").write_text(TRAIN)
        for label, budget in (("loaded", "100000"), ("memory-mapped", "0")):
            env = {**os.environ, "GANPIPE_DATA_BUDGET_MB": budget}
            start = time.perf_counter()
            subprocess.run([sys.executable, "train_run.py"], cwd=work, check=True, env=env, stdout=subprocess.DEVNULL)
            mem = memory_of((work / "status.txt").read_text())
            print(f"train 1 epoch, data {label}: {time.perf_counter() - start:.0f} s; RssAnon {mem['RssAnon']:.2f} "
                  f"GiB (held by the process), RssFile {mem['RssFile']:.2f} GiB (mapped file pages), peak RSS "
                  f"{mem['VmHWM']:.2f} GiB")


if __name__ == "__main__":
    main()
