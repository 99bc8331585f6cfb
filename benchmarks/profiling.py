"""What torch.profiler says about a window of training steps: on a GPU, kernel time over wall time (how busy the
GPU is), kernel launches and host-device synchronisations per step, and the kernels that take the time. A small
GAN's step is a few GFLOP: when the GPU is busy a small share of the wall time, the host (Python, kernel
launches, waits for values read back) is what limits it, not the arithmetic.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch.profiler import ProfilerActivity, profile

# CUDA runtime and driver calls as the profiler names them
LAUNCHES = {"cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx", "cudaGraphLaunch",
            "cudaLaunchCooperativeKernel"}
SYNCS = {"cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cuStreamSynchronize",
         "cuCtxSynchronize", "cudaMemcpy"}  # a plain (not Async) cudaMemcpy blocks the host until it is done


@dataclass
class Window:
    """Profile `steps` steps: start() before the first, stop() after the last; then the numbers."""
    device: torch.device
    steps: int
    busy: float | None = None  # kernel time / wall time (None on a CPU)
    launches_per_step: float = 0.0  # kernels and graph replays started by the host
    syncs_per_step: float = 0.0  # the host waiting for the device (the window's own closing sync left out)
    top: list[tuple[str, float, float]] = field(default_factory=list)  # (kernel, µs per step, calls per step)

    def start(self) -> None:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
        self._prof = profile(activities=[ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda)
        self._prof.start()
        self._began = time.perf_counter()

    def stop(self) -> None:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()  # the window ends when the device has done its kernels (one sync, not counted)
        wall = time.perf_counter() - self._began
        self._prof.stop()
        events = self._prof.key_averages()
        steps = max(self.steps, 1)  # --profile 0: an empty window, not a division by zero
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        self.launches_per_step = sum(e.count for e in events if e.key in LAUNCHES) / steps
        self.syncs_per_step = (sum(e.count for e in events if e.key in SYNCS) - cuda) / steps
        if cuda:
            self.busy = sum(e.self_device_time_total for e in kernels) / 1e6 / wall
        ranked = sorted(kernels, key=lambda e: -e.self_device_time_total)
        self.top = [(e.key, e.self_device_time_total / steps, e.count / steps) for e in ranked]

    def cells(self) -> list[str]:
        """GPU busy, launches per step, syncs per step: as table cells."""
        busy = f"{self.busy:.0%}" if self.busy is not None else "-"
        return [busy, f"{self.launches_per_step:.0f}", f"{self.syncs_per_step:.1f}"]

    def top_lines(self, k: int) -> list[str]:
        return [f"  {us:8.1f} µs/step {calls:5.1f} calls/step  {name[:100]}" for name, us, calls in self.top[:k]]
