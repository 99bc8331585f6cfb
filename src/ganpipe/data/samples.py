"""The samples file (the `sample` stage's output): uint8 images, the class requested of each, and where they came
from (the generator's hash, the sample params), so whoever scores the file needs nothing else."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganpipe import checkpoint
from ganpipe.errors import CheckpointError
from ganpipe.files import atomic


@dataclass(frozen=True)
class Samples:
    """A samples file read back: what `evaluate` scores, and where it came from."""

    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor | None  # the class requested of each sample (conditional generators), else None
    meta: dict  # {"generator_sha256": ..., "params": {"sample.n": "10000", ...}} as the sample stage wrote it


def save_samples(images: torch.Tensor, path: Path, labels: torch.Tensor | None, meta: dict) -> None:
    """uint8 images, the requested class of each when the generator is conditional, and `meta` (the generator's
    hash and the sample params) in the file itself, so that whoever scores the file knows what it holds
    without reading the generator or the params."""
    tensors = {"images": images.contiguous()}
    if labels is not None:
        tensors["labels"] = labels.contiguous()
    with atomic(path) as tmp:
        save_file(tensors, str(tmp), metadata=checkpoint.header("samples", meta))


def load_samples(path: Path) -> Samples:
    """The samples file written by `save_samples`; CheckpointError naming the stage when missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"samples {path} not found; run `dvc repro sample`")
    try:
        meta = checkpoint.read_header(path, "samples")
        tensors = load_file(str(path))
        images, labels = tensors["images"], tensors.get("labels")
        if images.dtype != torch.uint8 or images.ndim != 4 or (labels is not None and labels.shape != images.shape[:1]):
            raise ValueError(f"images {images.dtype} {tuple(images.shape)} do not look like samples")
    except (SafetensorError, ValueError, KeyError, TypeError, OSError) as exc:
        raise CheckpointError(f"samples {path} are corrupt or were written by an older ganpipe ({exc}); "
                              f"re-create them with `dvc repro -f sample`") from None
    return Samples(images, labels, meta)
