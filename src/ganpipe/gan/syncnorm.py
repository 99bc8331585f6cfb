"""Synchronised batch norm on any device: the batch statistics of the whole global batch, not of each
process's slice, so N processes normalise exactly as one process with the same global batch would.

torch.nn.SyncBatchNorm refuses CPU tensors, and gloo on CPUs is how the distributed path is tested here; this
one all-reduces (sum, sum of squares, count) with a differentiable all-reduce whose backward all-reduces the
gradient, as SyncBatchNorm's does. The module keeps BatchNorm's parameters and
buffers under the same names, so a generator trained with it saves and loads as a plain one.
"""
from __future__ import annotations

import torch
from torch import nn


class _AllReduce(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum that every rank uses is the sum of every rank's gradient."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        torch.distributed.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not (self.training and grouped and torch.distributed.get_world_size() > 1):
            return super().forward(x)
        C = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims),
                           torch.full((1,), x.numel() // C, dtype=torch.float32, device=x.device)])
        total = _AllReduce.apply(local)  # [sum (C), sum of squares (C), count]
        n = total[-1]
        mean = total[:C] / n
        var = (total[C : 2 * C] / n - mean * mean).clamp_min(0)  # biased, as batch norm normalises with
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                rate = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), rate)
                self.running_var.lerp_(var.detach() * n / (n - 1), rate)  # unbiased, as BatchNorm keeps it
        shape = (1, C) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm1d/2d inside `module` (in place) for a SyncBatchNorm holding the same tensors."""
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            sync = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                 child.track_running_stats, device=next(iter(child.state_dict().values())).device)
            sync.load_state_dict(child.state_dict())
            sync.train(child.training)
            setattr(module, name, sync)
        else:
            convert(child)
    return module
