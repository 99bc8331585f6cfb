"""One set of images with labels, and how sets are split and hashed."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # [N, C, H, W] uint8
    labels: torch.Tensor  # [N] int64

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, self.images.shape
        assert self.labels.shape == (self.images.shape[0],), (self.labels.shape, self.images.shape)


@dataclass
class Source:
    """A whole dataset as read from its source, before it is split."""

    split: Split
    classes: list[str]  # class names in label order; [] when the data has no labels
    details: dict = field(default_factory=dict)  # what info.json records about the source (files, transform...)


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


def split_holdout(data: Split, holdout_fraction: float, seed: int, in_place: bool = False) -> tuple[Split, Split]:
    """(train, holdout), the holdout stratified by class so every class is scored. `in_place` builds the training
    split inside `data`'s own image array (which it overwrites) instead of a copy: a large dataset then needs
    only its own memory plus the held-out share while it is split."""
    hold, train = stratified_indices(data.labels, holdout_fraction, seed)
    holdout = Split(data.images[hold], data.labels[hold])
    if not in_place:
        return Split(data.images[train], data.labels[train]), holdout
    images = data.images
    for j in range(0, len(train), 1024):  # ascending: row train[j] >= j is read before anything overwrites it
        chunk = train[j : j + 1024]
        images[j : j + len(chunk)] = images[chunk]
    return Split(images[: len(train)], data.labels[train]), holdout


def content_hash(*parts: Split) -> str:
    """sha256 of the images and labels of `parts` taken as one set, in order (without concatenating them)."""
    h = hashlib.sha256()
    n = sum(len(p.labels) for p in parts)
    h.update(str((n, *parts[0].images.shape[1:])).encode())
    for p in parts:
        h.update(memoryview(p.images.contiguous().numpy()).cast("B"))
    for p in parts:
        h.update(memoryview(p.labels.contiguous().numpy()).cast("B"))
    return h.hexdigest()
