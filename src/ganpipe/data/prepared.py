"""The prepared folder (the `prepare` stage's output): train and held-out splits as uint8 safetensors,
info.json with the content hash, the class histogram and a grid of real images."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganpipe.config import DataConfig
from ganpipe.data.images import make_grid, save_png
from ganpipe.data.split import Split, content_hash, split_holdout
from ganpipe.errors import DataError
from ganpipe.files import class_counts_csv, remove, write_json, write_text


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


def read_prepared(folder: Path) -> tuple[dict, Split, Split]:
    """(info, train split, held-out split) of a prepared folder; DataError naming the stage when missing."""
    folder = Path(folder)
    return read_info(folder), load_split(folder / TRAIN_FILE), load_split(folder / HOLDOUT_FILE)


def prepare(source: Split, cfg: DataConfig, out: Path, grid_rows: int = 10,
            check: Callable[[int, int, int], None] | None = None) -> dict:
    """Split `source` (the dataset data.* names) and write the prepared folder: to a temp folder, renamed at the
    end, so never half-written. `check(n_train, n_holdout, image_size)` may refuse the sizes before any write."""
    train, holdout = split_holdout(source, cfg.holdout_fraction, cfg.seed)
    if check is not None:
        check(len(train.labels), len(holdout.labels), train.images.shape[-1])
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
