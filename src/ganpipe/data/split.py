"""One set of images with labels, and how sets are split and hashed."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # [N, C, H, W] uint8
    labels: torch.Tensor  # [N] int64

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, self.images.shape
        assert self.labels.shape == (self.images.shape[0],), (self.labels.shape, self.images.shape)


def stratified_indices(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
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
    hold, train = stratified_indices(data.labels, holdout_fraction, seed)
    return Split(data.images[train], data.labels[train]), Split(data.images[hold], data.labels[hold])


def content_hash(data: Split) -> str:
    h = hashlib.sha256()
    h.update(str(tuple(data.images.shape)).encode())
    h.update(data.images.contiguous().numpy().tobytes())
    h.update(data.labels.contiguous().numpy().tobytes())
    return h.hexdigest()
