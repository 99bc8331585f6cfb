"""Images made anywhere -> uint8 [N, C, H, W] (+ optional labels), for `ganpipe evaluate --samples`.

Accepted: .npz (first array, or 'images'/'samples'/'x'; labels from 'labels'/'y'), .npy, .pt/.pth (a tensor
or a dict like npz; read with weights_only=True, so no code runs), .safetensors ('images' or the only tensor;
'labels'), or a folder of PNG files (sorted by name). Values: uint8 in [0, 255], or floats in [-1, 1]
(the GAN convention); shapes N,H,W or N,C,H,W (N,H,W,C is recognised when C is 1 or 3 and H, W are not).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_KEYS = ("images", "samples", "x", "arr_0")
LABEL_KEYS = ("labels", "y")


class SamplesError(ValueError):
    """Samples that cannot be read or scored; the message says what is wrong and what is expected."""


def _pick(arrays: dict, path: Path) -> tuple[object, object | None]:
    if not arrays:
        raise SamplesError(f"{path} holds no arrays")
    image_key = next((k for k in IMAGE_KEYS if k in arrays), None)
    if image_key is None:
        if len(arrays) != 1:
            raise SamplesError(f"{path} holds {sorted(arrays)}; name the images one of {list(IMAGE_KEYS)}")
        image_key = next(iter(arrays))
    label_key = next((k for k in LABEL_KEYS if k in arrays), None)
    return arrays[image_key], (arrays[label_key] if label_key else None)


def _read(path: Path) -> tuple[object, object | None]:
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            from PIL import Image

            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
            if not files:
                raise SamplesError(f"folder {path} holds no .png files")
            return np.stack([np.asarray(Image.open(f)) for f in files]), None
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return _pick({k: z[k] for k in z.files}, path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        if suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            return _pick(obj, path) if isinstance(obj, dict) else (obj, None)
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return _pick(load_file(str(path)), path)
    except SamplesError:
        raise
    except Exception as exc:  # numpy, torch, PIL and safetensors each raise their own types for bad files
        raise SamplesError(f"cannot read {path} ({type(exc).__name__}: {exc})") from None
    raise SamplesError(f"{path}: unknown format {suffix!r}; use .npz, .npy, .pt, .safetensors or a PNG folder")


def _to_nchw(x: torch.Tensor, channels: int, path: Path) -> torch.Tensor:
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise SamplesError(f"{path}: images must be N,H,W or N,C,H,W, got shape {tuple(x.shape)}")
    if x.shape[1] != channels and x.shape[3] == channels:
        x = x.permute(0, 3, 1, 2)  # N,H,W,C as image libraries write it
    if x.shape[1] != channels:
        raise SamplesError(f"{path}: images have {x.shape[1]} channels, the evaluation classifier takes "
                           f"{channels} (shape {tuple(x.shape)})")
    return x


def _to_uint8(x: torch.Tensor, path: Path) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise SamplesError(f"{path}: {int((~torch.isfinite(x)).sum())} pixels are NaN or inf")
        lo, hi = x.min().item(), x.max().item()
        if lo < -1.0001 or hi > 1.0001:
            raise SamplesError(f"{path}: float pixels must be in [-1, 1] (the GAN convention), got [{lo:.3g}, "
                               f"{hi:.3g}]; convert [0, 255] images to uint8")
        return ((x.double().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
        if x.min() < 0 or x.max() > 255:
            raise SamplesError(f"{path}: integer pixels must be in [0, 255], got [{x.min()}, {x.max()}]")
        return x.to(torch.uint8)
    raise SamplesError(f"{path}: unsupported pixel type {x.dtype}; use uint8 or floats in [-1, 1]")


def read_samples(path: str | Path, channels: int, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(uint8 [N, channels, size, size], int64 labels [N] or None); SamplesError for anything else."""
    path = Path(path)
    if not path.exists():
        raise SamplesError(f"samples {path} not found")
    images, labels = _read(path)
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if len(x) == 0:
        raise SamplesError(f"{path} holds no images")
    x = _to_uint8(_to_nchw(x, channels, path), path).contiguous()
    if tuple(x.shape[2:]) != (size, size):
        raise SamplesError(f"{path}: images are {x.shape[2]}x{x.shape[3]}, the evaluation classifier takes "
                           f"{size}x{size}")
    if labels is not None:
        labels = labels if isinstance(labels, torch.Tensor) else torch.from_numpy(np.asarray(labels))
        if labels.shape != (len(x),):
            raise SamplesError(f"{path}: labels must be one per image ({len(x)}), got shape {tuple(labels.shape)}")
        labels = labels.to(torch.int64)
    return x, labels
