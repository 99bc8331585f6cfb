"""Copy detection at scale: time and memory of the nearest-neighbour search and of the whole copy scores
(copy share and C_T) against 100,000 and 1,000,000 training features.

  python benchmarks/copy_scale.py [--refs 100000 1000000] [--queries 1000] [--dim 2048] [--cells 5]

Each size runs in its own process: random float32 features of --dim (Inception's 2048) as the training set,
--queries samples and --queries held-out features, then
  nearest   eval/copying.py's chunked exact search: each sample's nearest training feature (float64 distances)
  scores    copying.scores: both searches, the held-out quantile, and C_T (cells fitted on at most
            copying.KMEANS_FIT training points, every point assigned, each cell searched where it lies)
with each one's wall time and the process's peak resident memory (VmHWM) beyond the features themselves.
The search is exact, so its time grows as queries x references: 10,000 samples take 10x the 1,000 measured.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _status_gib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 2**20
    raise KeyError(key)


def one(refs: int, queries: int, dim: int, cells: int, threads: int) -> dict:
    import torch

    from ganpipe.eval import copying

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    train = torch.empty(refs, dim)
    for i in range(0, refs, 65_536):  # filled in place: no second copy of the features at any time
        train[i : i + 65_536].normal_(generator=g)
    held, fake = torch.randn(queries, dim, generator=g), torch.randn(queries, dim, generator=g)
    base = _status_gib("VmRSS")  # the features and the libraries, before any search
    start = time.perf_counter()
    copying.nearest(fake, train)
    t_nearest = time.perf_counter() - start
    peak_nearest = _status_gib("VmHWM") - base
    start = time.perf_counter()
    result, _, _ = copying.scores(train, held, fake, 0.05, cells)
    t_scores = time.perf_counter() - start
    return {"refs": refs, "features_gib": train.numel() * 4 / 2**30, "nearest_s": t_nearest,
            "nearest_extra_gib": peak_nearest, "scores_s": t_scores, "scores_extra_gib": _status_gib("VmHWM") - base,
            "copy_share": result["copy_share"], "copy_ct": result["copy_ct"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refs", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a size's own process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.queries, args.dim, args.cells, args.threads)))
        return
    print(f"{args.queries:,} samples and {args.queries:,} held-out features of {args.dim} dimensions, "
          f"{args.cells} C_T cells, {args.threads} threads")
    for refs in args.refs:
        cmd = [sys.executable, __file__, "--one", str(refs), "--queries", str(args.queries), "--dim", str(args.dim),
               "--cells", str(args.cells), "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{refs} references failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{refs:>9,} training features ({r['features_gib']:.2f} GiB): nearest {r['nearest_s']:7.1f} s, "
              f"+{r['nearest_extra_gib']:.2f} GiB; all copy scores {r['scores_s']:7.1f} s, +{r['scores_extra_gib']:.2f} "
              f"GiB peak beyond the features (copy share {r['copy_share']:.3f}, C_T {r['copy_ct']:.2f})")


if __name__ == "__main__":
    main()
