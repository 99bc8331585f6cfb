"""Pixel conversions (uint8 <-> the GAN range [-1, 1]), image grids as uint8 arrays, and deterministic PNG files
(same pixels -> same bytes, so DVC caches them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], as the seed does (x / 127.5 - 1)."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to nearest."""
    return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def make_grid(images: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    """uint8 [N, C, H, W] -> uint8 [rows*(H+pad)+pad, nrow*(W+pad)+pad, 3] with a black border."""
    assert images.dtype == torch.uint8 and images.ndim == 4, (images.dtype, images.shape)
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = torch.zeros(3, rows * (h + pad) + pad, nrow * (w + pad) + pad, dtype=torch.uint8)
    rgb = images.expand(-1, 3, -1, -1) if c == 1 else images[:, :3]
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y : y + h, x : x + w] = rgb[i]
    return grid.permute(1, 2, 0).contiguous().numpy()


def save_png(array: np.ndarray, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", optimize=False)
