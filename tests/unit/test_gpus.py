"""One GPU per training process (ganpipe/gpus.py): concurrent processes claim different GPUs, a third waits for a
free one, and a killed holder's GPU is free again. GPUs are named by made-up UUIDs: no GPU is needed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

from ganpipe import gpus

from helpers import ROOT

HOLDER = """
import sys, time
from pathlib import Path
from ganpipe import gpus
index = gpus.claim(sys.argv[2].split(","), Path(sys.argv[1]), say=lambda m: print("waiting", flush=True), wait_s=0.05)
print(f"claimed {index}", flush=True)
time.sleep(float(sys.argv[3]))
"""


def holder(folder, ids, hold_s):
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), ",".join(ids), str(hold_s)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def test_processes_claim_different_gpus_and_a_third_waits_for_a_free_one(tmp_path):
    ids = ["GPU-aaaa", "GPU-bbbb"]
    first = holder(tmp_path, ids, 60)
    firsts = first.stdout.readline().strip()
    second = holder(tmp_path, ids, 60)
    assert {firsts, second.stdout.readline().strip()} == {"claimed 0", "claimed 1"}
    third = holder(tmp_path, ids, 0)
    assert third.stdout.readline().strip() == "waiting"
    os.kill(first.pid, signal.SIGKILL)  # no clean-up: the OS drops the lock with the process
    first.wait()
    assert third.stdout.readline().strip() == firsts  # the killed holder's GPU
    assert third.wait(timeout=60) == 0
    second.kill()
    second.wait()
    # the file names the GPU, not its index: a process that sees the GPUs in another order takes the free one
    held = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "GPU-bbbb", "60"], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert held.stdout.readline().strip() == "claimed 0"
    try:
        assert gpus.claim(["GPU-bbbb", "GPU-aaaa"], tmp_path) == 1
    finally:
        gpus.release()
        held.kill()
        held.wait()


def test_a_process_keeps_its_claim_and_one_visible_gpu_or_a_cpu_claims_nothing(tmp_path, monkeypatch):
    try:
        assert gpus.claim(["GPU-x", "GPU-y"], tmp_path) == 0
        assert gpus.claim(["GPU-x", "GPU-y"], tmp_path) == 0  # the same one again, not a second
    finally:
        gpus.release()
    assert gpus.claim_gpu(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert gpus.claim_gpu(torch.device("cuda")) == torch.device("cuda")  # pinned (CUDA_VISIBLE_DEVICES): as it is
    assert not gpus._held


def test_the_lock_folder_is_per_user_and_can_be_set(monkeypatch, tmp_path):
    monkeypatch.delenv(gpus.LOCKS_ENV, raising=False)
    assert gpus.lock_folder().name == f"ganpipe-gpu-locks-{os.getuid()}"
    monkeypatch.setenv(gpus.LOCKS_ENV, str(tmp_path / "locks"))
    assert gpus.lock_folder() == tmp_path / "locks"
