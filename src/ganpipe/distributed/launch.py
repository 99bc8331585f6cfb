"""Starting the training processes: torchrun's elastic launcher, run inside the stage's own process.

`dvc repro` runs `python stages/train.py` as always; when train.processes x train.nodes > 1 that process checks
what it can before anything starts (backend vs hardware, the rendezvous endpoint), then launches the workers
(the same stage file, which finds itself inside torchrun and trains) and waits. One worker failing makes the
launcher stop every other worker (SIGTERM, then SIGKILL); its error becomes one message, the MLflow run is
marked FAILED and the resume checkpoint stays.

Single machine: c10d rendezvous on 127.0.0.1, any free port. Several machines: static rendezvous at
train.rendezvous, which node 0 (the one running dvc, and the only one writing outputs and logging) hosts; the
others join with `ganpipe train-node --node-rank K`. Static, because c10d's dynamic rendezvous orders nodes by
host name and pid, so the global rank 0 could land on a machine that is not the one DVC is waiting on.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import torch

from ganpipe.distributed.group import LOST_PEERS_EXIT, backend_for, in_worker
from ganpipe.errors import ConfigError, DistributedError, Terminated
from ganpipe.gan import devices
from ganpipe.params.config import TrainConfig

RUN_ID_FILE = "GANPIPE_RUN_ID_FILE"  # where rank 0 notes its MLflow run id, so a failed launch can mark it



def needed(cfg: TrainConfig) -> bool:
    return cfg.world_size > 1 and not in_worker()


def check(cfg: TrainConfig, node_rank: int) -> str:
    """The backend the processes will use; ConfigError for what cannot work, before any process starts."""
    device = devices.resolve(cfg.device)
    backend = backend_for(cfg.backend, device)
    if backend == "nccl" and cfg.processes > torch.cuda.device_count():
        raise ConfigError(f"train.processes is {cfg.processes} but torch sees {torch.cuda.device_count()} GPU(s) "
                          f"here; NCCL needs a GPU of its own per process. Lower train.processes, or set "
                          f"train.device: cpu (gloo) to test the distributed path without GPUs")
    if not 0 <= node_rank < cfg.nodes:
        raise ConfigError(f"node rank {node_rank} is outside train.nodes ({cfg.nodes}): use 1 to {cfg.nodes - 1}")
    if cfg.nodes > 1:
        check_endpoint(cfg.rendezvous, node_rank, cfg.timeout_s)
    return backend


def check_endpoint(endpoint: str, node_rank: int, timeout_s: float) -> None:
    """Node 0 must be able to listen on the endpoint; any other node must reach it within timeout_s."""
    host, port = endpoint.rsplit(":", 1)
    if node_rank == 0:
        try:
            with socket.create_server((host, int(port))):
                return
        except OSError as exc:
            raise ConfigError(f"node 0 cannot listen on train.rendezvous {endpoint} ({exc.strerror or exc}): it "
                              f"must be an address of this machine (the one running dvc) and a free port") from None
    deadline, error = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as exc:
            error = exc.strerror or str(exc)
            time.sleep(0.5)
    raise ConfigError(f"cannot reach the rendezvous {endpoint} within train.timeout_s ({timeout_s} s): {error}. "
                      f"Start node 0 first (`dvc repro` there) and check the host, the port and any firewall")


def _failures(exc: Exception) -> str:
    """The ranks that failed by themselves; ranks the launcher stopped afterwards (SIGTERM: 143) and ranks that
    stopped because a peer went away (LOST_PEERS_EXIT) are not causes."""
    failures = getattr(exc, "failures", {}) or {}
    causes = {r: f for r, f in failures.items()
              if f.exitcode not in (143, -signal.SIGTERM, LOST_PEERS_EXIT)} or failures
    parts = []
    for rank, failure in sorted(causes.items()):
        code = failure.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        parts.append(f"rank {rank} (pid {failure.pid}) {how}")
    return "; ".join(parts) or str(exc)


def launch(cfg: TrainConfig, script: Path, args: list[str], node_rank: int = 0,
           on_failure=lambda run_id: None) -> None:
    """Run `python script *args` as cfg.processes workers on this node and wait for them. `on_failure(run_id)`
    is called with rank 0's MLflow run id (or None) when a worker fails, before the error is raised."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check(cfg, node_rank)
    if not script.is_file():
        raise ConfigError(f"{script} not found: run from the repository root (where dvc.yaml is)")
    if cfg.nodes == 1:
        rdzv = dict(rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", run_id=str(uuid.uuid4()))
    else:
        rdzv = dict(rdzv_backend="static", rdzv_endpoint=cfg.rendezvous, run_id="ganpipe",
                    rdzv_configs={"rank": node_rank, "timeout": cfg.timeout_s})
    config = LaunchConfig(min_nodes=cfg.nodes, max_nodes=cfg.nodes, nproc_per_node=cfg.processes, max_restarts=0,
                          monitor_interval=0.2, **rdzv)
    # the launcher's own log lines repeat what the workers print, as a traceback: our message replaces them
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "run_id"
        os.environ[RUN_ID_FILE] = str(note)
        try:
            elastic_launch(config, sys.executable)(str(script), *args)
        except ChildFailedError as exc:
            on_failure(note.read_text().strip() if note.is_file() else None)
            raise DistributedError(f"distributed training failed: {_failures(exc)} (its own message, if any, is "
                                   f"above); every other process was stopped, and the last checkpoint is kept: "
                                   f"`dvc repro` resumes from it") from None
        except SignalException:
            raise Terminated() from None
        except Exception as exc:  # the rendezvous: other nodes missing, endpoint unusable
            if type(exc).__module__.startswith("torch.distributed"):
                raise DistributedError(f"the processes could not start together ({type(exc).__name__}: "
                                       f"{str(exc)[:300]}); check train.rendezvous and that every node "
                                       f"joined within train.timeout_s") from None
            raise
        finally:
            os.environ.pop(RUN_ID_FILE, None)


def note_run_id(run_id: str | None) -> None:
    """Rank 0: tell the launcher which MLflow run this training logs to."""
    path = os.environ.get(RUN_ID_FILE)
    if path and run_id:
        Path(path).write_text(run_id)
