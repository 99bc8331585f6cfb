"""What `ganpipe tune` costs beyond its trials, and its throughput with 1 and 2 workers on this machine.

Clones HEAD into a temporary folder, runs the stages before `train` there (the trials reuse them), then two
studies of the same short trials (the digits pipeline with train.epochs=EPOCHS, searching train.g_lr and
train.loss): one with --workers 1, one with --workers 2. It prints, per study:
- the wall time and the trials per minute;
- the orchestration overhead per trial: the study's wall time less the time spent inside the trials'
  `dvc exp run` (Optuna's sampling and storage, the MLflow look-up, the worker's loop), per trial, and as a share
  of a trial;
- inside `dvc exp run`: the training's own seconds (time/train_s) and the rest (DVC's temporary copy of the
  workspace, the other stages, the commit of the experiment).
Usage: python benchmarks/tune_overhead.py [--trials 6] [--epochs 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = """params:
  train.g_lr: {low: 1e-4, high: 1e-3, log: true}
  train.loss: {choices: [bce, hinge]}
"""


def cpu_flags() -> str:
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0] if Path("/proc/cpuinfo").exists() \
        else ""
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags)


def study_numbers(clone: Path, name: str) -> dict:
    import mlflow
    import optuna

    from ganpipe.tune import storage

    study = optuna.load_study(study_name=name, storage=storage.open_storage(storage.default_url(clone)))
    trials = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
    train_s = [client.get_run(t.user_attrs["ganpipe.mlflow_run"]).data.metrics["time/train_s"] for t in trials]
    return {"n": len(trials), "dvc_s": [t.user_attrs["ganpipe.dvc_s"] for t in trials], "train_s": train_s,
            "trial_s": [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]}


def run_study(clone: Path, env: dict, name: str, trials: int, workers: int, sets: list[str]) -> float:
    args = [sys.executable, "-m", "ganpipe.cli", "tune", "--space", str(clone / "space.yaml"), "--trials",
            str(trials), "--workers", str(workers), "--study", name]
    for assignment in sets:
        args += ["-S", assignment]
    start = time.perf_counter()
    done = subprocess.run(args, cwd=clone, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ganpipe tune failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "GANPIPE_TUNE_STORAGE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    base = [f"train.epochs={args.epochs}"]
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
        (clone / "space.yaml").write_text(SPACE)
        subprocess.run([sys.executable, "-m", "dvc", "repro", "train_classifier", "reference"], cwd=clone, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = []
        # 2 cores: one worker trains on both, two workers on one each
        for workers, threads in ((1, os.cpu_count() or 1), (2, max(1, (os.cpu_count() or 2) // 2))):
            name = f"bench-w{workers}"
            wall = run_study(clone, env, name, args.trials, workers, [*base, f"train.threads={threads}",
                                                                       f"classifier.threads={threads}"])
            rows.append((workers, threads, wall, study_numbers(clone, name)))
    print(f"ganpipe tune: {args.trials} trials of the digits pipeline with train.epochs={args.epochs} "
          f"(cores: {os.cpu_count()}; CPU flags: {cpu_flags() or 'none of avx2/avx512'})")
    for workers, threads, wall, n in rows:
        inside = sum(n["dvc_s"])
        overhead = (wall * workers - inside) / n["n"]  # worker-seconds not spent inside a trial's dvc exp run
        per_trial = wall * workers / n["n"]
        print(f"--workers {workers} (train.threads={threads}): {wall:.0f} s, {60 * n['n'] / wall:.2f} trials/min; "
              f"a trial {statistics.mean(n['trial_s']):.1f} s, of which `dvc exp run` "
              f"{statistics.mean(n['dvc_s']):.1f} s "
              f"(training {statistics.mean(n['train_s']):.1f} s); orchestration overhead {overhead:.2f} s per trial "
              f"({overhead / per_trial:.1%} of a trial's worker time)")


if __name__ == "__main__":
    main()
