"""The real-data reference in Inception space: the features of the prepared training and held-out splits,
computed once per (data hash, network, resize) by the `reference` stage and kept as a DVC output. Evaluating a
new generator then costs only its own samples.

The file holds the features themselves, not only their mean and covariance: KID, precision/recall,
density/coverage and copy detection need the points. With evaluate.features = classifier the stage writes the
file without features, saying so in its metadata, and `evaluate` never reads it.

A large data set is represented by a capped reference (evaluate.reference_n): at most that many images of each
split, a seeded random subset kept in the split's order, the same in every space and every run (`capped`).
Embedding a million images in Inception space would take about 18 hours on 2 CPU cores; 50,000 is what papers'
reference statistics use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganpipe import checkpoint
from ganpipe.errors import ConfigError, DataError
from ganpipe.eval import inception
from ganpipe.files import atomic

KIND = "ganpipe.inception_reference"
SEEDS = {"train": 0, "holdout": 1}  # each split's subset is drawn with its own seed
DRAW = "a seeded random subset of each split (seed 0 train, 1 held-out), kept in the split's order"


def draw(n: int, cap: int | None, seed: int) -> torch.Tensor | None:
    """Sorted indices of at most `cap` of n items, a seeded random subset; None when all n are kept."""
    if cap is None or n <= cap:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:cap].sort().values


class Rows:
    """Rows `index` of a (possibly memory-mapped) image array, gathered only when sliced: a capped reference of
    a large split is never copied whole."""

    def __init__(self, images: torch.Tensor, index: torch.Tensor):
        self.images, self.index = images, index
        self.shape = (len(index), *images.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> torch.Tensor:
        return self.images[self.index[key]]


@dataclass(frozen=True)
class Part:
    """The reference images of one split (the split itself, or its capped rows) and their labels."""
    images: torch.Tensor | Rows
    labels: torch.Tensor
    total: int  # images in the whole split


def capped(images: torch.Tensor, labels: torch.Tensor, cap: int | None, side: str) -> Part:
    index = draw(len(labels), cap, SEEDS[side])
    if index is None:
        return Part(images, labels, len(labels))
    return Part(Rows(images, index), labels[index], len(labels))


def protocol(cap: int | None, train: Part, holdout: Part) -> dict:
    """What a result records about the reference it was scored against."""
    drawn = any(part.total > len(part.labels) for part in (train, holdout))
    return {"reference_n": cap, "n_train_total": train.total, "n_holdout_total": holdout.total,
            "reference_draw": DRAW if drawn else "the whole splits (each within reference_n)"}


def compute(net, train: Part, holdout: Part, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Inception features of both reference parts."""
    return (inception.features(net, train.images, batch, "training split"),
            inception.features(net, holdout.images, batch, "held-out split"))


def save(path: Path, train: torch.Tensor | None, holdout: torch.Tensor | None, data_sha256: str,
         features: str, reference_n: int | None) -> None:
    computed = train is not None and holdout is not None
    meta = {"computed": computed, "data_sha256": data_sha256, "evaluate.features": features,
            "protocol": inception.PROTOCOL, "reference_n": reference_n}
    tensors = {"train": train.contiguous(), "holdout": holdout.contiguous()} if computed else {}
    with atomic(path) as tmp:
        save_file(tensors, str(tmp), metadata=checkpoint.header(KIND, meta))


def load(path: Path, data_sha256: str, reference_n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train features, held-out features) of the prepared data with this hash and cap; one clear error
    otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found: run `dvc repro reference` (the Inception features of the real data)")
    try:
        meta = checkpoint.read_header(path, KIND)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is not a valid reference file ({exc}): re-run `dvc repro -f reference`") from None
    if not meta.get("computed"):
        raise ConfigError(f"{path} was made with evaluate.features={meta.get('evaluate.features')}, which needs no "
                          f"Inception features: run `dvc repro` (it re-runs `reference` for the current params)")
    if meta.get("data_sha256") != data_sha256:
        raise DataError(f"{path} holds the features of other data (sha256 {meta.get('data_sha256', '?')[:12]}, "
                        f"prepared data {data_sha256[:12]}): run `dvc repro reference`")
    if meta.get("protocol") != inception.PROTOCOL:
        raise DataError(f"{path} was computed with another feature network or resize: run `dvc repro -f reference`")
    if meta.get("reference_n") != reference_n:
        raise DataError(f"{path} holds a reference of evaluate.reference_n={meta.get('reference_n')}, the params "
                        f"say {reference_n}: run `dvc repro reference`")
    return tensors["train"], tensors["holdout"]
