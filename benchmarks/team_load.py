"""Load on the team server: N clients at once, each logging a full small run through ganpipe's own logging
path (open a run with the default params, per-epoch metrics and a per-epoch image grid, tags, end), then a
count on the server of what landed. Prints the server's latency per logging call (p50/p95 by call kind).

Usage: python benchmarks/team_load.py [--clients 8] [--epochs 20]
  with MLFLOW_TRACKING_URI/USERNAME/PASSWORD set: against that server;
  without: starts a throwaway stack (`ganpipe team up`) on 127.0.0.1 and stops it afterwards.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("loss/d", "loss/g", "d/real", "d/fake")


def client(index: int, epochs: int, experiment: str, out: "mp.Queue", ready: "mp.Barrier") -> None:
    """One client's run; puts (index, run_id, {call kind: [seconds]}) or (index, None, error text). The clients
    wait for each other after their imports, so the timings are of logging at once, not of starting Python."""
    from ganpipe.params import config
    from ganpipe.track import tracking

    cfg = config.load(str(ROOT / "params.yaml"))
    times: dict[str, list[float]] = {k: [] for k in ("start", "metrics", "image", "tags", "end")}
    rng = np.random.default_rng(index)
    ready.wait(timeout=600)
    try:
        start = time.perf_counter()
        with tracking.start_run(config.TrackingConfig(True, experiment), run_name=f"load-{index}",
                                params=cfg.logged(), tags={"load.client": str(index)}) as run:
            times["start"].append(time.perf_counter() - start)
            for epoch in range(1, epochs + 1):
                t = time.perf_counter()
                run.log_metrics(epoch, {k: float(rng.random()) for k in KEYS})
                times["metrics"].append(time.perf_counter() - t)
                t = time.perf_counter()
                run.log_image(epoch, "samples", rng.integers(0, 256, (98, 98, 3), dtype=np.uint8))
                times["image"].append(time.perf_counter() - t)
            t = time.perf_counter()
            run.set_tags({"load.done": "true"})
            times["tags"].append(time.perf_counter() - t)
            end = time.perf_counter()
        times["end"].append(time.perf_counter() - end)
        out.put((index, run.run_id, times))
    except Exception as exc:  # noqa: BLE001 (reported: a client that fails is the result)
        out.put((index, None, f"{type(exc).__name__}: {exc}"))


def run_load(clients: int, epochs: int, experiment: str) -> dict:
    """Start the clients together; returns their runs, latencies and what the server holds of each run."""
    from mlflow.tracking import MlflowClient

    ctx = mp.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Barrier(clients)
    procs = [ctx.Process(target=client, args=(i, epochs, experiment, out, ready)) for i in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - start  # (with the clients' start-up)
    done = {i: (rid, t) for i, rid, t in results if rid}
    errors = [t for _, rid, t in results if not rid]
    server = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])  # not mlflow's global uri: a caller may have set one
    landed = {}
    for i, (rid, _) in done.items():
        run = server.get_run(rid)
        steps = {k: sorted(m.step for m in server.get_metric_history(rid, k)) for k in KEYS}
        images = [f.path for f in server.list_artifacts(rid, "images") if f.path.endswith(".png")]
        landed[i] = {"status": run.info.status, "steps": steps, "images": len(images)}
    latencies: dict[str, list[float]] = {}
    for _, times in done.values():
        for kind, values in times.items():
            latencies.setdefault(kind, []).extend(values)
    return {"wall_s": wall, "done": len(done), "errors": errors, "landed": landed, "latencies": latencies}


def _stack(tmp: Path) -> dict[str, str]:
    from ganpipe.team import stack

    cmd = [sys.executable, "-m", "ganpipe.cli", "team", "up", str(tmp / "stack")]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return stack.client_env(*stack.load(tmp / "stack"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--experiment", default="team-load")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganpipe-load-", dir="/tmp"))
    tmp.chmod(0o711)  # as root, PostgreSQL runs as another user who must pass through
    own = not os.environ.get("MLFLOW_TRACKING_URI")
    try:
        if own:
            os.environ.update(_stack(tmp))
        result = run_load(args.clients, args.epochs, args.experiment)
    finally:
        if own:
            subprocess.run([sys.executable, "-m", "ganpipe.cli", "team", "down", str(tmp / "stack")],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    complete = [i for i, r in result["landed"].items() if r["status"] == "FINISHED" and r["images"] == args.epochs
                and all(s == list(range(1, args.epochs + 1)) for s in r["steps"].values())]
    print(f"{result['done']}/{args.clients} clients finished, {len(complete)}/{args.clients} runs complete on the "
          f"server (every metric step and image), in {result['wall_s']:.1f} s; errors: {result['errors'] or 'none'}")
    print("call      n     p50 ms   p95 ms   max ms")
    for kind, values in result["latencies"].items():
        ms = np.array(values) * 1000
        print(f"{kind:7s} {len(ms):5d} {np.percentile(ms, 50):9.1f} {np.percentile(ms, 95):8.1f} {ms.max():8.1f}")


if __name__ == "__main__":
    main()
