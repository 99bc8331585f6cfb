"""Feeding training batches: from where the split lies, or streamed from its file ahead of the step.

A split that fits the memory budget (GANPIPE_DATA_BUDGET_MB, data/prepared.py) is loaded, on a GPU too when it
fits there, and each batch is an index into it on the training thread (`Indexed`): nothing is faster. A larger
split is memory-mapped, and indexing it on the training thread would make every step wait for the disk, so
`Streamed` gathers the coming batches in background threads instead:

- the file's pages of the next `depth` batches are requested from the OS first, by a thread of its own
  (posix_fadvise WILLNEED: the disk reads them in parallel, into the page cache, while the step runs);
- a worker thread gathers each batch's rows (numpy's take, without the GIL and single-threaded) into pinned
  host memory when the device is a GPU, so the copy to the GPU is non-blocking and overlaps the step.

Both give the same bytes in the same order, so the training is bitwise the same either way (tested). Which one
runs is an environment setting like the budget, not a param: it changes how fast, never what is trained.
GANPIPE_STREAM: auto (stream when the split is memory-mapped, or too big to live on the GPU) | on | off.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ganpipe.errors import DataError

STREAM_ENV, MODES = "GANPIPE_STREAM", ("auto", "on", "off")
WORKERS = 1  # gathering threads: a copy is memory-bound, and one keeps batches ready without taking the step's cores
DEPTH = 8  # batches requested ahead of the step: enough disk reads in flight to hide their latency

Batch = tuple[torch.Tensor, torch.Tensor]  # (uint8 images [b, C, H, W], int64 labels [b]) on the device


@dataclass(frozen=True)
class Pass:
    """Batches `first` to `last` (exclusive) of one pass: batch j is perm[j * size : (j + 1) * size][mine]."""
    perm: torch.Tensor  # int64 [N], on the CPU
    first: int
    last: int
    size: int
    mine: slice  # this process's slice of every global batch

    def indices(self, perm: torch.Tensor) -> Iterator[torch.Tensor]:
        for j in range(self.first, self.last):
            yield perm[j * self.size : (j + 1) * self.size][self.mine]


def mode() -> str:
    value = os.environ.get(STREAM_ENV, "auto").strip().lower()
    if value not in MODES:
        raise DataError(f"{STREAM_ENV} must be one of {list(MODES)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Rows:
    """Where a split's images lie in their file: row i is bytes [offset + i * row_bytes, + row_bytes)."""
    path: Path
    offset: int
    row_bytes: int


def streams(mapped: bool, on_device: bool) -> bool:
    """Whether to stream: GANPIPE_STREAM, else (auto) when the images are memory-mapped or stay off the GPU."""
    chosen = mode()
    return chosen == "on" or (chosen == "auto" and (mapped or not on_device))


class Indexed:
    """Each batch indexed on the training thread from where the split lies (RAM, the GPU, or a memory map)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, device: torch.device):
        self.images, self.labels, self.device = images, labels.to(images.device), device

    def batches(self, part: Pass) -> Iterator[Batch]:
        for idx in part.indices(part.perm.to(self.images.device)):  # one copy of the order per pass
            yield (self.images[idx].to(self.device, non_blocking=True),
                   self.labels[idx].to(self.device, non_blocking=True))

    def close(self) -> None:
        pass


class Streamed:
    """The coming batches gathered by background threads, their pages requested from the disk ahead of time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, device: torch.device, rows: Rows | None,
                 workers: int = WORKERS, depth: int = DEPTH):
        self.images, self.labels, self.device, self.depth = images, labels, device, depth
        self.source = images.numpy()  # the memory map (or the array) itself: numpy reads it without copying
        self.pin = device.type == "cuda"  # pinned host memory: what a non-blocking copy to the GPU needs
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="ganpipe-stream")
        # the read-ahead requests have a thread of their own: the kernel may block one until the disk's queue has
        # room, and the step must not wait for that
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="ganpipe-readahead")
        self.rows, self.fd = rows, os.open(rows.path, os.O_RDONLY) if rows is not None else None

    def _ask(self, idx: torch.Tensor) -> None:
        """Ask the OS to read these rows now (asynchronously): the gather then finds them in memory."""
        r = self.rows
        for i in idx.tolist():
            os.posix_fadvise(self.fd, r.offset + i * r.row_bytes, r.row_bytes, os.POSIX_FADV_WILLNEED)

    def _gather(self, idx: torch.Tensor) -> Batch:
        out = torch.empty((len(idx), *self.images.shape[1:]), dtype=torch.uint8, pin_memory=self.pin)
        # numpy's take: one copy straight into the buffer, on this thread alone and without the GIL; torch's
        # index_select would start its own OpenMP team here, and on a small CPU the step's threads then stall
        np.take(self.source, idx.numpy(), axis=0, out=out.numpy())
        return out, self.labels[idx]

    def batches(self, part: Pass) -> Iterator[Batch]:
        pending: deque[Future] = deque()
        ahead = part.indices(part.perm)
        try:
            while True:
                while len(pending) < self.depth:
                    idx = next(ahead, None)
                    if idx is None:
                        break
                    if self.fd is not None:
                        self.reader.submit(self._ask, idx)
                    pending.append(self.pool.submit(self._gather, idx))
                if not pending:
                    return
                images, labels = pending.popleft().result()
                yield (images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True))
        finally:  # an interrupted pass: what was not gathered yet is dropped
            for future in pending:
                future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.reader.shutdown(wait=True, cancel_futures=True)  # before the file it reads is closed
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
