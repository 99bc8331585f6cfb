"""The prepared folder (the `prepare` stage's output): train and held-out splits as uint8 safetensors,
info.json with the content hash, the class histogram and a grid of real images."""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Callable

import torch

from ganpipe.data.images import make_grid, save_png
from ganpipe.data.split import Source, Split, content_hash, split_holdout
from ganpipe.data import stream
from ganpipe.data.store import map_arrays, read_header, write_arrays
from ganpipe.data.stream import Rows
from ganpipe.errors import DataError
from ganpipe.files import class_counts_csv, remove, write_json, write_text
from ganpipe.params.config import DataConfig

# A split whose images take more than this many MiB is memory-mapped from its file instead of loaded: the OS
# pages in what training touches. It changes where the bytes live, never their values (tested bitwise), so it
# is an environment setting, not a param that would re-run stages.
BUDGET_ENV, DEFAULT_BUDGET_MB = "GANPIPE_DATA_BUDGET_MB", 2048


def budget_bytes() -> int:
    value = os.environ.get(BUDGET_ENV, str(DEFAULT_BUDGET_MB))
    try:
        return int(float(value) * 2**20)
    except ValueError:
        raise DataError(f"{BUDGET_ENV} must be a number of MiB, got {value!r}") from None


def save_split(data: Split, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_arrays(path, {"images": data.images.contiguous(), "labels": data.labels.contiguous()})


def load_split(path: Path, mapped: bool | None = None) -> Split:
    """A prepared split: loaded when its images fit the memory budget, else memory-mapped (read-only use);
    `mapped` decides instead when given."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found; run `dvc repro prepare` first")
    try:
        arrays = map_arrays(path)
        images, labels = arrays["images"], arrays["labels"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch notes that a copy-on-write map is not writable: never written
            as_mapped = torch.from_numpy(images)
        keep_mapped = images.nbytes > budget_bytes() if mapped is None else mapped
        return Split(as_mapped if keep_mapped else as_mapped.clone(), torch.from_numpy(labels).clone())
    except (DataError, KeyError, AssertionError, ValueError) as exc:
        raise DataError(f"{path} is not a valid prepared split ({exc}); re-run `dvc repro -f prepare`") from None


# Files inside the prepared folder: one place, used by every stage that reads it.
TRAIN_FILE, HOLDOUT_FILE, INFO_FILE = "train.safetensors", "holdout.safetensors", "info.json"
HIST_FILE, GRID_FILE = "class_hist.csv", "real_grid.png"


def write_info(folder: Path, name: str, train: Split, holdout: Split, source: Source) -> dict:
    return write_info_of(folder, name, content_hash(train, holdout), list(train.images.shape[1:]), train.labels,
                         holdout.labels, source.classes, source.details)


def write_info_of(folder: Path, name: str, sha256: str, shape: list[int], train_labels: torch.Tensor,
                  holdout_labels: torch.Tensor, classes: list[str], details: dict) -> dict:
    """info.json from what it records (the images themselves are not needed: a large set is hashed from disk)."""
    info = {
        "dataset": name,
        "sha256": sha256,
        "image_shape": shape,
        "num_classes": max(1, len(classes)),
        "labelled": bool(classes),
        "classes": classes,
        "n_train": len(train_labels),
        "n_holdout": len(holdout_labels),
        **details,
    }
    write_json(folder / INFO_FILE, info)
    return info


def read_info(folder: Path) -> dict:
    path = Path(folder) / INFO_FILE
    if not path.is_file():
        raise DataError(f"{path} not found; run `dvc repro prepare` first")
    return json.loads(path.read_text())


def write_histogram(folder: Path, train_labels: torch.Tensor, holdout_labels: torch.Tensor, num_classes: int) -> None:
    counts = {name: torch.bincount(labels, minlength=num_classes).tolist()
              for name, labels in (("train", train_labels), ("holdout", holdout_labels))}
    write_text(folder / HIST_FILE, class_counts_csv("split", counts))


def training_split(folder: Path) -> tuple[Split, Rows | None]:
    """The training split as `train` reads it, and where its images lie in the file when they are memory-mapped
    (bigger than the budget, or GANPIPE_STREAM=on): then training streams them (data/stream.py)."""
    path = Path(folder) / TRAIN_FILE
    if not path.is_file():
        raise DataError(f"{path} not found; run `dvc repro prepare` first")
    header, start = read_header(path)
    entry = header.get("images", {})
    shape, offsets = entry.get("shape", [0]), entry.get("data_offsets", [0, 0])
    mapped = stream.mode() == "on" or offsets[1] - offsets[0] > budget_bytes()
    split = load_split(path, mapped)
    return split, Rows(path, start + offsets[0], math.prod(shape[1:])) if mapped else None


def holdout_split(folder: Path) -> Split:
    """The held-out split (memory-mapped when bigger than the budget)."""
    return load_split(Path(folder) / HOLDOUT_FILE)


def read_prepared(folder: Path) -> tuple[dict, Split, Split]:
    """(info, train split, held-out split) of a prepared folder; DataError naming the stage when missing."""
    folder = Path(folder)
    return read_info(folder), load_split(folder / TRAIN_FILE), load_split(folder / HOLDOUT_FILE)


def grid_count(num_classes: int, rows: int) -> int:
    """Real images per class in the prepared grid: one row per class when there are enough classes."""
    return rows if num_classes >= rows else math.ceil(rows * rows / num_classes)


def grid_indices(train_labels: torch.Tensor, num_classes: int, rows: int) -> torch.Tensor:
    """Which training images the prepared grid shows: one row per class where possible, so the grid shows what
    each class looks like."""
    order = torch.argsort(train_labels, stable=True)
    per = grid_count(num_classes, rows)
    chosen = torch.cat([order[train_labels[order] == k][:per] for k in range(num_classes)])
    return chosen[: rows * rows]


def check_classes(train_labels: torch.Tensor, holdout_labels: torch.Tensor, classes: list[str],
                  cfg: DataConfig) -> None:
    """Every class needs images on both sides of the split: one to train on, one to score against."""
    k = max(1, len(classes))
    n_train, n_hold = torch.bincount(train_labels, minlength=k), torch.bincount(holdout_labels, minlength=k)
    short = [f"{(classes or ['(all)'])[i]} ({int(n_train[i] + n_hold[i])})" for i in range(k)
             if n_train[i] == 0 or n_hold[i] == 0]
    if short:
        raise DataError(f"class(es) {', '.join(short[:10])} have too few images to put some in both the training "
                        f"and the held-out split (data.holdout_fraction {cfg.holdout_fraction}); add images to "
                        f"them, remove those class folders, or change data.holdout_fraction")


def prepare(source: Source, cfg: DataConfig, out: Path, grid_rows: int = 10,
            check: Callable[[int, int, int], None] | None = None) -> dict:
    """Split `source` (the dataset data.* names) and write the prepared folder: to a temp folder, renamed at the
    end, so never half-written. `check(n_train, n_holdout, image_size)` may refuse the sizes before any write.
    The training split is built inside the source's array (which is consumed) to keep peak memory low."""
    train, holdout = split_holdout(source.split, cfg.holdout_fraction, cfg.seed, in_place=True)
    check_classes(train.labels, holdout.labels, source.classes, cfg)
    if check is not None:
        check(len(train.labels), len(holdout.labels), train.images.shape[-1])
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    remove(tmp)
    tmp.mkdir(parents=True)
    save_split(train, tmp / TRAIN_FILE)
    save_split(holdout, tmp / HOLDOUT_FILE)
    info = write_info(tmp, cfg.dataset, train, holdout, source)
    write_histogram(tmp, train.labels, holdout.labels, info["num_classes"])
    save_png(make_grid(train.images[grid_indices(train.labels, info["num_classes"], grid_rows)], grid_rows),
             tmp / GRID_FILE)
    remove(out)
    tmp.rename(out)
    return info
