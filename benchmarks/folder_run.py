"""A large image folder through the whole pipeline: `ganpipe run` with the stage-by-stage peak memory.

  python benchmarks/folder_run.py --folder DIR [--config folder128_unlabelled] [--kimg 5] [-S key=value ...]

Runs `ganpipe run CONFIG -S data.root=DIR -S train.epochs=null -S train.kimg=K ...` in this project (run it in a
fresh clone) and samples every 0.2 s the proportional set size (anonymous and shared memory, PSS) of each stage's
process tree (`python stages/NAME.py` and its children, such as prepare's decoding workers). Prints each stage's
peak, the whole run's wall time and the scores it wrote. Mapped file pages (a memory-mapped prepared split) are
the OS's page cache and are not counted, as in benchmarks/folder_scale.py.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folder_scale import _pss, _tree  # noqa: E402


def stage_of(pid: int) -> str | None:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for a in args:
        if a.startswith(b"stages/") and a.endswith(b".py"):
            return a[len(b"stages/"):-3].decode()
    return None


def watch(proc: subprocess.Popen, every: float = 0.2) -> dict[str, float]:
    """The peak over time of each stage's tree PSS (GiB), until `proc` ends."""
    peaks: dict[str, float] = {}
    while proc.poll() is None:
        for pid in _tree(proc.pid):
            name = stage_of(pid)
            if name is not None:
                kib = sum(_pss(p) for p in _tree(pid))
                peaks[name] = max(peaks.get(name, 0.0), kib / 2**20)
        time.sleep(every)
    return peaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--config", default="folder128_unlabelled")
    ap.add_argument("--kimg", type=float, default=5)
    ap.add_argument("-S", dest="sets", action="append", default=[])
    args = ap.parse_args()
    sets = [f"data.root={args.folder.resolve()}", "train.epochs=null", f"train.kimg={args.kimg}", *args.sets]
    cmd = [sys.executable, "-m", "ganpipe.cli", "run", args.config, "-n", "folder-run"]
    for s in sets:
        cmd += ["-S", s]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    log = open("folder_run.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    peaks = watch(proc)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"ganpipe run failed ({proc.returncode}); see folder_run.log")
    print(f"whole run: {wall:.0f} s")
    for name, gib in peaks.items():
        print(f"  {name:<18} peak {gib:.2f} GiB (PSS of the stage and its workers)")
    for path in ("metrics/train.json", "metrics/eval.json"):
        if Path(path).is_file():
            print(path, json.dumps(json.loads(Path(path).read_text()))[:600])


if __name__ == "__main__":
    main()
