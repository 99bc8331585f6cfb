"""Wall-clock time of the default pipeline on a fresh clone (set-up not counted), stage by stage.

Clones HEAD into a temporary folder (empty DVC cache, empty MLflow store), runs each stage with
`dvc repro -s`, prints the seconds per stage and the total, and checks that dvc.lock came out unchanged.
Usage: python benchmarks/pipeline_time.py
"""
from __future__ import annotations

import graphlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def stage_order(clone: Path, env: dict) -> list[str]:
    """The stages in an order `dvc repro` may run them, from `dvc dag --dot`: a dep added to dvc.yaml reorders
    them here too (train reads the Inception reference, so `reference` comes before it)."""
    dot = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot"], cwd=clone, env=env, capture_output=True,
                         text=True, check=True).stdout
    graph: dict[str, set[str]] = {name: set() for name in re.findall(r'^"([\w-]+)";$', dot, re.M)}
    for before, after in re.findall(r'^"([\w-]+)" -> "([\w-]+)";$', dot, re.M):
        graph[after].add(before)
    return list(graphlib.TopologicalSorter(graph).static_order())


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
        times = {}
        for stage in stage_order(clone, env):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dvc", "repro", "-s", stage], cwd=clone, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[stage] = time.perf_counter() - start
        status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    for stage, seconds in times.items():
        print(f"{stage:<18}{seconds:>7.1f}s")
    print(f"{'total':<18}{sum(times.values()):>7.1f}s  (cores: {os.cpu_count()})")
    print("dvc.lock and tracked metrics unchanged: " + ("yes" if not status.strip() else f"NO\n{status}"))


if __name__ == "__main__":
    main()
