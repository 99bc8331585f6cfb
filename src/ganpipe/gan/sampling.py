"""Generator files and drawing from a generator: uint8 images from G, N samples from a fixed seed."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganpipe import checkpoint
from ganpipe.data.images import to_uint8
from ganpipe.errors import ConfigError
from ganpipe.gan.models import build_generator
from ganpipe.params.config import ModelConfig


def save_generator(G: nn.Module, path: Path, model_cfg: ModelConfig, shape: tuple[int, int, int],
                   num_classes: int) -> None:
    meta = {"model": dataclasses.asdict(model_cfg), "shape": list(shape), "num_classes": num_classes}
    checkpoint.save_module(G, path, "generator", meta)


# model keys newer than some generator files: what those files were built with (they predate r3gan, the only
# architecture that reads these), so `ganpipe generate` still loads a generator logged by an older ganpipe
ADDED_MODEL_KEYS = {"blocks": (1,), "cardinality": (1,), "expansion": 1}


def _model_cfg(meta: dict) -> ModelConfig:
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["model"].items()}
    return ModelConfig(**{**ADDED_MODEL_KEYS, **saved})


@dataclass(frozen=True)
class Generator:
    """A trained generator as read back from its file: the network and what it was built with."""

    net: nn.Module
    model: ModelConfig
    num_classes: int
    shape: tuple[int, int, int]  # (C, H, W) of the images it draws


def load_generator(path: Path) -> Generator:
    """The generator in eval mode and the ModelConfig it was trained with (read from the file itself)."""
    build = lambda meta: build_generator(_model_cfg(meta), tuple(meta["shape"]), meta["num_classes"])  # noqa: E731
    G, meta = checkpoint.load_module(path, "generator", build, stage="train")
    return Generator(G, _model_cfg(meta), meta["num_classes"], tuple(meta["shape"]))


@torch.no_grad()
def render(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """G(z, y) in eval mode as uint8 [N, C, H, W] on the CPU; restores G's previous mode."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    images = to_uint8(G(z.to(device), None if y is None else y.to(device))).cpu()
    G.train(was_training)
    return images


def requested_labels(n: int, classes: tuple[int, ...] | None, gen: Generator) -> torch.Tensor | None:
    """The class asked of each of n samples: the classes in turn (balanced), or None for an unconditional G."""
    if not gen.model.conditional:
        if classes is not None:
            raise ConfigError("sample.classes needs a class-conditional generator; set sample.classes: null")
        return None
    classes = tuple(range(gen.num_classes)) if classes is None else classes
    if max(classes) >= gen.num_classes or min(classes) < 0:
        raise ConfigError(f"sample.classes must be class indices below {gen.num_classes}, got {list(classes)}")
    return torch.tensor(classes, dtype=torch.int64).repeat(n // len(classes) + 1)[:n]


def generate(G: nn.Module, n: int, z_dim: int, seed: int, batch_size: int,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """n samples as uint8 [n, C, H, W]; z is drawn in one go from `seed`, so the result is batch-size free."""
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([render(G, z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
                      for i in range(0, n, batch_size)])


def noise(n: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """z [n, z_dim] from `seed`. With truncation psi (BigGAN's trick), every entry beyond |psi| is drawn again
    from the same stream until it lies within: samples trade variety for fidelity as psi shrinks."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)
    if truncation is None:
        return z
    if not truncation > 0:
        raise ConfigError(f"--truncation must be a positive number (e.g. 0.7), got {truncation}")
    outside = z.abs() > truncation
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=gen)
        outside = z.abs() > truncation
    return z


def interpolation(rows: int, steps: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """z [rows * steps, z_dim]: each row walks from one latent to another along the great circle (slerp, which
    keeps the norm a Gaussian latent has), `steps` points including both ends."""
    if steps < 2:
        raise ConfigError(f"--interpolate needs at least 2 steps (both ends), got {steps}")
    ends = noise(2 * rows, z_dim, seed, truncation).view(rows, 2, z_dim)
    a, b = ends[:, 0], ends[:, 1]
    cos = (torch.nn.functional.normalize(a, dim=1) * torch.nn.functional.normalize(b, dim=1)).sum(1).clamp(-1, 1)
    omega = torch.acos(cos)[:, None, None]  # [rows, 1, 1]
    t = torch.linspace(0, 1, steps)[None, :, None]  # [1, steps, 1]
    sin = torch.sin(omega).clamp_min(1e-8)
    path = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin
    return path.reshape(rows * steps, z_dim)


def draw(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int,
         progress: bool = False) -> torch.Tensor:
    """G on the given latents in batches, as uint8 [N, C, H, W]."""
    from tqdm import tqdm

    starts = range(0, len(z), batch_size)
    return torch.cat([render(G, z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
                      for i in tqdm(starts, desc="generate", unit="batch", disable=not progress)])
