"""Generator files and sample generation: N samples from a fixed seed, written as uint8."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ganpipe import checkpoint
from ganpipe.config import ModelConfig
from ganpipe.files import atomic
from ganpipe.models import build_generator
from ganpipe.train import render


def save_generator(G: nn.Module, path: Path, model_cfg: ModelConfig, shape: tuple[int, int, int]) -> None:
    meta = {"model": dataclasses.asdict(model_cfg), "shape": list(shape)}
    checkpoint.save_module(G, path, "generator", meta)


def _model_cfg(meta: dict) -> ModelConfig:
    return ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["model"].items()})


def load_generator(path: Path) -> tuple[nn.Module, ModelConfig]:
    """The generator in eval mode and the ModelConfig it was trained with (read from the file itself)."""
    build = lambda meta: build_generator(_model_cfg(meta), tuple(meta["shape"]))  # noqa: E731
    G, meta = checkpoint.load_module(path, "generator", build, stage="train")
    return G, _model_cfg(meta)


def generate(G: nn.Module, n: int, z_dim: int, seed: int, batch_size: int) -> torch.Tensor:
    """n samples as uint8 [n, C, H, W]; z is drawn in one go from `seed`, so the result is batch-size free."""
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([render(G, z[i : i + batch_size]) for i in range(0, n, batch_size)])


def save_samples(images: torch.Tensor, path: Path) -> None:
    with atomic(path) as tmp:
        save_file({"images": images.contiguous()}, str(tmp))


def load_samples(path: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise checkpoint.CheckpointError(f"samples {path} not found; run `dvc repro sample`")
    return load_file(str(path))["images"]
