"""One GPU per training process when a machine has several: the first one no other ganpipe process holds.

`dvc queue start -j 3` runs three experiments at once, each a process that sees every GPU; a bare `cuda` device
would put all three on GPU 0. So a training process that sees more than one GPU claims one: an exclusive
`flock` on a file named after the GPU's UUID, in a folder every process of the user shares (GANPIPE_GPU_LOCKS,
default /tmp/ganpipe-gpu-locks-UID). The OS drops the lock when the process ends, crash and SIGKILL included,
so no stale claim outlives its process. When every GPU is held, the process waits for one and says so.

Processes pinned to one GPU each (CUDA_VISIBLE_DEVICES, as `ganpipe tune --gpus` pins its workers) see one GPU
and claim nothing; torchrun's workers take their local rank's GPU (ganpipe.distributed) and claim nothing.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, TextIO

import torch

from ganpipe.console import note

LOCKS_ENV = "GANPIPE_GPU_LOCKS"
WAIT_S = 2.0  # between looks for a free GPU while all are held
_held: dict[int, TextIO] = {}  # what this process holds: index -> its open lock file (open for the process's life)


def lock_folder() -> Path:
    return Path(os.environ.get(LOCKS_ENV) or Path(tempfile.gettempdir()) / f"ganpipe-gpu-locks-{os.getuid()}")


def claim(ids: list[str], folder: Path | None = None, say: Callable[[str], None] | None = None,
          wait_s: float = WAIT_S) -> int:
    """The index in `ids` (the visible GPUs' UUIDs, in torch's order) of a GPU this process now holds, waiting
    while all are held; the same one again on a second call."""
    if _held:
        return next(iter(_held))
    folder = folder or lock_folder()
    folder.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        for index, gpu in enumerate(ids):
            handle = open(folder / f"{gpu}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")  # who holds it, for a person looking
            handle.flush()
            _held[index] = handle
            return index
        if not told and say is not None:
            say(f"all {len(ids)} visible GPUs are held by other ganpipe processes (locks in {folder}); waiting for one")
            told = True
        time.sleep(wait_s)


def release() -> None:
    """Give back what this process holds (the OS does it at exit anyway)."""
    for handle in _held.values():
        handle.close()
    _held.clear()


def visible_ids() -> list[str]:
    """The UUIDs of the GPUs torch sees, in its order (index i is cuda:i)."""
    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]


def claim_gpu(device: torch.device) -> torch.device:
    """A single process on a machine with several visible GPUs: the one it claims, made the current device;
    any other device as it is."""
    if device.type != "cuda" or torch.cuda.device_count() < 2:
        return device
    index = claim(visible_ids(), say=note)
    torch.cuda.set_device(index)
    return torch.device("cuda", index)
