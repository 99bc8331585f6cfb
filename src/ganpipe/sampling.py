"""Generator files and sample generation: N samples from a fixed seed, written as uint8."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ganpipe import checkpoint
from ganpipe.config import ConfigError, ModelConfig
from ganpipe.files import atomic
from ganpipe.models import build_generator
from ganpipe.train import render


def save_generator(G: nn.Module, path: Path, model_cfg: ModelConfig, shape: tuple[int, int, int],
                   num_classes: int) -> None:
    meta = {"model": dataclasses.asdict(model_cfg), "shape": list(shape), "num_classes": num_classes}
    checkpoint.save_module(G, path, "generator", meta)


def _model_cfg(meta: dict) -> ModelConfig:
    return ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["model"].items()})


@dataclass(frozen=True)
class Generator:
    """A trained generator as read back from its file: the network and what it was built with."""

    net: nn.Module
    model: ModelConfig
    num_classes: int


def load_generator(path: Path) -> Generator:
    """The generator in eval mode and the ModelConfig it was trained with (read from the file itself)."""
    build = lambda meta: build_generator(_model_cfg(meta), tuple(meta["shape"]), meta["num_classes"])  # noqa: E731
    G, meta = checkpoint.load_module(path, "generator", build, stage="train")
    return Generator(G, _model_cfg(meta), meta["num_classes"])


def requested_labels(n: int, classes: tuple[int, ...] | None, gen: Generator) -> torch.Tensor | None:
    """The class asked of each of n samples: the classes in turn (balanced), or None for an unconditional G."""
    if not gen.model.conditional:
        if classes is not None:
            raise ConfigError("sample.classes needs a class-conditional generator; set sample.classes: null")
        return None
    classes = tuple(range(gen.num_classes)) if classes is None else classes
    if max(classes) >= gen.num_classes:
        raise ConfigError(f"sample.classes must be class indices below {gen.num_classes}, got {list(classes)}")
    return torch.tensor(classes, dtype=torch.int64).repeat(n // len(classes) + 1)[:n]


def generate(G: nn.Module, n: int, z_dim: int, seed: int, batch_size: int,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """n samples as uint8 [n, C, H, W]; z is drawn in one go from `seed`, so the result is batch-size free."""
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([render(G, z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
                      for i in range(0, n, batch_size)])


def save_samples(images: torch.Tensor, path: Path, labels: torch.Tensor | None = None) -> None:
    """uint8 images, plus the requested class of each when the generator is conditional."""
    tensors = {"images": images.contiguous()}
    if labels is not None:
        tensors["labels"] = labels.contiguous()
    with atomic(path) as tmp:
        save_file(tensors, str(tmp))


def load_samples(path: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, requested labels or None)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise checkpoint.CheckpointError(f"samples {path} not found; run `dvc repro sample`")
    tensors = load_file(str(path))
    return tensors["images"], tensors.get("labels")
