"""DVC with a large image folder as a dependency, and a large output in its cache: what to expect.

  python benchmarks/dvc_scale.py --folder DIR [--out-gib 1.0] [--project /tmp/ganpipe-dvc-scale]

In a scratch DVC project (git + dvc init) with one stage that depends on --folder, as `prepare` depends on
data.root, and writes a file of --out-gib as its output, as `prepare` writes the prepared array:
  first repro   DVC hashes every file of the folder (md5, kept in its state database) and caches the output
  status        `dvc status` with nothing changed: a stat of every file against the state database
  no-op repro   `dvc repro` with nothing changed
  one touched   `dvc status` after one file's contents changed: it is found
Then the disk the output takes, in the workspace and the cache together, with the project's cache.type
(hardlink,symlink,copy, as ganpipe's .dvc/config sets it) and with DVC's default (reflink,copy).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINKS = "hardlink,symlink,copy"  # what ganpipe's .dvc/config sets
STAGE = """stages:
  prepare:
    cmd: python -c "import os; f = open('out.bin', 'wb'); [f.write(os.urandom(1 << 26)) for _ in range({chunks})]"
    deps:
      - {folder}
    outs:
      - out.bin
"""


def sh(project: Path, *cmd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def disk_gib(*paths: Path) -> float:
    """Blocks used by these trees together, a hard-linked file counted once (du does that)."""
    out = subprocess.run(["du", "-sc", "--block-size=1", *map(str, paths)], capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1].split()[0]) / 2**30


def project_with(path: Path, folder: Path, chunks: int, cache_type: str | None) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    sh(path, "git", "init", "-q")
    sh(path, "dvc", "init", "-q")
    sh(path, "dvc", "config", "core.analytics", "false")
    if cache_type:
        sh(path, "dvc", "config", "cache.type", cache_type)
    (path / "dvc.yaml").write_text(STAGE.format(folder=folder, chunks=chunks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--out-gib", type=float, default=1.0)
    ap.add_argument("--project", type=Path, default=Path("/tmp/ganpipe-dvc-scale"))
    args = ap.parse_args()
    folder = args.folder.resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    chunks = max(1, round(args.out_gib * 16))  # 64 MiB each
    version = subprocess.run(["dvc", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{len(files):,} files in {folder}; dvc {version}; an output of {chunks / 16:.2f} GiB")
    project = args.project
    project_with(project, folder, chunks, LINKS)
    first = sh(project, "dvc", "repro", "-q")
    status = sh(project, "dvc", "status", "-q")
    noop = sh(project, "dvc", "repro", "-q")
    victim = files[len(files) // 2]
    original = victim.read_bytes()
    stat = os.stat(victim)
    try:
        victim.write_bytes(original + b"\0")
        start = time.perf_counter()
        touched = subprocess.run(["dvc", "status"], cwd=project, capture_output=True, text=True)
        touched_s = time.perf_counter() - start
        found = "modified" in touched.stdout and "changed deps" in touched.stdout
    finally:  # the folder as it was, its time included
        victim.write_bytes(original)
        os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    linked = disk_gib(project / "out.bin", project / ".dvc" / "cache")
    print(f"first repro (hash the folder, run, cache the output): {first:8.1f} s")
    print(f"dvc status, nothing changed:                          {status:8.1f} s")
    print(f"dvc repro, nothing changed:                           {noop:8.1f} s")
    print(f"dvc status after one file changed:                    {touched_s:8.1f} s (found: {found})")
    print(f"output + cache on disk, cache.type {LINKS}: {linked:.2f} GiB")
    project_with(project, folder, chunks, None)
    sh(project, "dvc", "repro", "-q")
    copied = disk_gib(project / "out.bin", project / ".dvc" / "cache")
    print(f"output + cache on disk, DVC's default (reflink,copy):   {copied:.2f} GiB")
    shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
