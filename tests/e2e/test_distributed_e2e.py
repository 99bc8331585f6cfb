"""The train stage under torchrun for real: 2 gloo processes on this machine, 2 "nodes" on 127.0.0.1, a rank
killed mid-training, resume on the same and on another number of processes, and the refusals before any start.
One uninterrupted 2-process run is the reference every other 2-process run must equal byte for byte."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from helpers import ROOT, TINY_OVERRIDES, merged

EPOCHS = 20
DDP = {"processes": 2, "threads": 1, "epochs": EPOCHS, "checkpoint_every_s": 0, "grid_every_s": 0, "timeout_s": 60}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Place:
    """A working folder with prepared data; each call writes params.yaml and runs a command there."""

    def __init__(self, root: Path):
        self.root = root
        (root / "stages").symlink_to(ROOT / "stages")  # what `ganpipe train-node` launches, as in a clone
        self.env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "RANK",
                                                                     "WORLD_SIZE", "LOCAL_RANK")}
        self.env["PYTHONPATH"] = str(ROOT / "src")
        base = merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_OVERRIDES)
        self.base = merged(base, {"data": {"dataset": "synthetic", "max_images": 300}})
        self.params()
        for stage in ("prepare", "train_classifier"):  # the classifier: rank 0 scores during training with it
            self.run([sys.executable, str(ROOT / "stages" / f"{stage}.py")], check=True)

    def params(self, **train) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(merged(self.base, {"train": {**DDP, **train}})))

    def train_cmd(self) -> list[str]:
        return [sys.executable, str(ROOT / "stages" / "train.py")]

    def run(self, cmd: list[str], check: bool = False) -> subprocess.CompletedProcess:
        out = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600)
        assert not check or out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out

    def start(self, cmd: list[str]) -> subprocess.Popen:
        return subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    @property
    def generator(self) -> Path:
        return self.root / "models" / "generator.safetensors"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "train.pt"

    def runs(self):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{self.root / 'mlflow.db'}")
        return client, [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Place:
    return Place(tmp_path_factory.mktemp("ddp"))


@pytest.fixture(scope="module")
def reference(place) -> bytes:
    """One uninterrupted 2-process training: its generator bytes."""
    place.run(place.train_cmd(), check=True)
    return place.generator.read_bytes()


def one_run_per_epoch(client, run) -> None:
    """Every epoch's metrics and image grid exactly once: none lost, none duplicated by a resume."""
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss/d")]
    assert sorted(steps) == list(range(1, EPOCHS + 1)), steps
    images = client.list_artifacts(run.info.run_id, "images")
    grids = [f.path for f in images if f.path.endswith(".png")]
    assert len(grids) == EPOCHS + 1, grids  # step 0 (untrained G) and every epoch


def test_two_processes_log_one_run_from_rank_0(place, reference):
    client, [run] = place.runs()
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert (tags["train.world_size"], tags["train.backend"], tags["train.rank_devices"]) == ("2", "gloo", "cpu,cpu")
    assert run.data.params["train.processes"] == "2"
    one_run_per_epoch(client, run)
    assert not place.checkpoint.exists()


def kill_rank_1_after_a_checkpoint(place: Place) -> tuple[subprocess.CompletedProcess, list[int]]:
    proc = place.start(place.train_cmd())
    while not place.checkpoint.exists() and proc.poll() is None:
        time.sleep(0.02)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "train.py" in " ".join(p.cmdline())]
    [rank1] = [p for p in workers if p.environ().get("RANK") == "1"]
    rank1.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)  # a guard against a hang, not a timing assertion
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), [p.pid for p in workers]


def test_killed_rank_stops_every_process_fails_the_run_and_resumes_bitwise(place, reference):
    place.generator.unlink()
    done, pids = kill_rank_1_after_a_checkpoint(place)
    assert not place.generator.exists(), "training finished before rank 1 could be killed"
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "distributed training failed: rank 1 (pid" in done.stderr and "killed by signal 9" in done.stderr
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids), "orphan training processes"
    client, runs = place.runs()
    failed = max(runs, key=lambda r: r.info.start_time)
    assert failed.info.status == "FAILED" and place.checkpoint.is_file()

    resumed = place.run(place.train_cmd(), check=True)
    assert "resuming from checkpoints/train.pt at epoch" in resumed.stdout
    assert place.generator.read_bytes() == reference  # bitwise: same world size, same threads
    client, runs = place.runs()
    [again] = [r for r in runs if r.info.run_id == failed.info.run_id]  # continued, not a new run
    assert again.info.status == "FINISHED" and len(runs) == 2
    one_run_per_epoch(client, again)


def test_checkpoint_of_two_processes_resumes_on_one(place, reference):
    kill_rank_1_after_a_checkpoint(place)
    assert place.checkpoint.is_file()
    place.params(processes=1)
    try:
        resumed = place.run(place.train_cmd(), check=True)
    finally:
        place.params()
    assert "saved by 2 process(es), resumed on 1" in resumed.stdout
    client, runs = place.runs()
    latest = max(runs, key=lambda r: r.info.start_time)
    assert latest.info.status == "FINISHED" and latest.data.tags["train.world_size"] == "1"
    one_run_per_epoch(client, latest)


def test_sigterm_to_the_stage_stops_every_process_and_marks_the_run_killed(place, reference):
    """`kill` of the stage process (a stopped queue job, Ctrl-C's cousin): every worker stops, the run ends
    KILLED (stopped, not failed), the checkpoint stays, exit code 143."""
    proc = place.start(place.train_cmd())
    while not place.checkpoint.exists() and proc.poll() is None:
        time.sleep(0.02)
    pids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143 and "terminated (SIGTERM)" in err and "Traceback" not in err, err
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    _, runs = place.runs()
    assert max(runs, key=lambda r: r.info.start_time).info.status == "KILLED" and place.checkpoint.is_file()
    place.checkpoint.unlink()  # the next test trains from scratch


def test_two_nodes_on_loopback_equal_two_local_processes(place, reference):
    """Two torchrun launches with --nnodes 2 (node 0: the stage, node 1: `ganpipe train-node`): the same world
    size and rank layout as 2 local processes, so the same bytes."""
    place.params(processes=1, nodes=2, rendezvous=f"127.0.0.1:{free_port()}")
    try:
        node0 = place.start(place.train_cmd())
        node1 = place.start([sys.executable, "-m", "ganpipe.cli", "train-node", "--node-rank", "1"])
        results = [(*p.communicate(timeout=600), p.returncode) for p in (node0, node1)]
    finally:
        place.params()
    assert [r[-1] for r in results] == [0, 0], results
    assert place.generator.read_bytes() == reference
    client, runs = place.runs()
    latest = max(runs, key=lambda r: r.info.start_time)
    assert latest.data.tags["train.world_size"] == "2" and latest.data.params["train.nodes"] == "2"


@pytest.mark.parametrize("train, node, message", [
    ({"backend": "nccl", "device": "cpu"}, 0, "train.backend: nccl needs CUDA GPUs"),
    ({"nodes": 2, "processes": 1, "timeout_s": 10}, 1, "cannot reach the rendezvous 127.0.0.1:"),
    ({"batch_size": 6, "processes": 4}, 0, "train.batch_size must split into equal slices of at least 2 images"),
])
def test_bad_distributed_input_is_one_message_before_any_start(place, train, node, message):
    if train.get("nodes"):
        train["rendezvous"] = f"127.0.0.1:{free_port()}"  # nobody listens there
    place.params(**train)
    try:
        cmd = [sys.executable, "-m", "ganpipe.cli", "train-node", "--node-rank", "1"] if node else place.train_cmd()
        out = place.run(cmd)
    finally:
        place.params()
    assert out.returncode == 1 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_torchrun_with_another_process_count_is_refused(place):
    """A hand-written torchrun command must match the params: every process stops with one message."""
    place.params(processes=4)
    try:
        out = place.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                         str(ROOT / "stages" / "train.py")])
    finally:
        place.params()
    assert out.returncode != 0
    assert "torchrun started 2 processes in all, but train.processes x train.nodes is 4" in out.stderr


def test_dvc_exp_run_trains_on_two_processes(repo, env, tmp_path):
    """The stage command is unchanged: `dvc exp run -S train.processes=2` launches torchrun by itself, and the
    rest of the pipeline runs on what rank 0 wrote (logged to a store of its own, not the shared repo's)."""
    from mlflow.tracking import MlflowClient

    from helpers.e2e import dvc

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dvc(repo, {**env, "MLFLOW_TRACKING_URI": store}, "exp", "run", "--temp", "-n", "two-procs",
        "-S", "train.processes=2", "-S", "train.threads=1")
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id],
                               "tags.`dvc.exp_name` = 'two-procs'")
    assert run.info.status == "FINISHED" and run.data.tags["train.world_size"] == "2"
    assert "eval/fid" in run.data.metrics  # sample and evaluate ran on rank 0's generator and found its run
